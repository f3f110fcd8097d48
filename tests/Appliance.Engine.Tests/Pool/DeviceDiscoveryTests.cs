using Appliance.Engine.Pool;
using Appliance.Tests.Common;

namespace Appliance.Engine.Tests.Pool;

/// <summary>Device discovery from real recorded output (an H200 machine) and from inventories written for the case.</summary>
public sealed class DeviceDiscoveryTests
{
    private const long GiB = 1024L * 1024 * 1024;

    private static string Fixture(string name) => File.ReadAllText(Path.Combine(RepositoryPaths.Root, "tests", "fixtures", "gpu", "h200", name));

    [Theory]
    [InlineData("query-basic.csv")]
    [InlineData("query-extended.csv")]
    public void The_recorded_H200_is_read_from_nvidia_smi(string file)
    {
        var gpu = Assert.Single(NvidiaSmiInventory.Parse(Fixture(file)));
        Assert.Equal("cuda:0", gpu.Id);
        Assert.Equal("NVIDIA H200", gpu.Name);
        Assert.Equal("GPU-57d61c14-4445-31e3-630b-fbd2db9f33a3", gpu.Uuid);
        Assert.Equal(143771L * 1024 * 1024, gpu.MemoryTotalBytes);
        Assert.Equal(0, gpu.MemoryUsedBytes);
        Assert.True(gpu.Healthy);
    }

    [Fact]
    public void Several_gpus_of_different_sizes_with_one_unreadable()
    {
        var gpus = NvidiaSmiInventory.Parse("""
            0, GPU-aaaa, NVIDIA A100-SXM4-80GB, 81920, 1024
            1, GPU-bbbb, NVIDIA L40S, 46068, 46000
            2, GPU-cccc, NVIDIA A10, [N/A], [N/A]

            """);
        Assert.Equal(["cuda:0", "cuda:1", "cuda:2"], gpus.Select(g => g.Id));
        Assert.Equal(80 * GiB - GiB, gpus[0].MemoryFreeBytes);
        Assert.Equal(68L * 1024 * 1024, gpus[1].MemoryFreeBytes); // nearly full
        Assert.False(gpus[2].Healthy);
    }

    [Theory]
    [InlineData("No devices were found\n", 0)]
    [InlineData("", 0)]
    public void No_gpus_is_an_empty_list(string output, int count) => Assert.Equal(count, NvidiaSmiInventory.Parse(output).Count);

    [Fact]
    public void Malformed_output_names_the_line() =>
        Assert.Contains("line 2", Assert.Throws<FormatException>(() => NvidiaSmiInventory.Parse("0, GPU-a, X, 1, 0\nNVIDIA-SMI has failed")).Message, StringComparison.Ordinal);

    [Fact]
    public void Nvml_is_preferred_and_nvidia_smi_is_the_fallback()
    {
        var nvml = new[] { new PoolDevice(DeviceKind.Cuda, 0, "from nvml", 10 * GiB, 0) };
        var smi = NvidiaSmiInventory.Parse(Fixture("query-basic.csv"));
        Assert.Equal("nvml", DeviceInventory.Discover(new(), () => nvml, () => smi, 16, 64 * GiB).Source);
        var fallback = DeviceInventory.Discover(new(), () => null, () => smi, 16, 64 * GiB);
        Assert.Equal(("nvidia-smi", "cuda:0"), (fallback.Source, Assert.Single(fallback.Devices).Id)); // a usable GPU: no CPU slot
    }

    [Fact]
    public void Excluded_gpus_are_left_out_and_a_machine_without_usable_gpus_gets_a_cpu_slot()
    {
        var smi = NvidiaSmiInventory.Parse(Fixture("query-basic.csv"));
        var inventory = DeviceInventory.Discover(new DeviceInventoryOptions { Exclude = ["GPU-57D61C14-4445-31E3-630B-FBD2DB9F33A3"] }, () => null, () => smi, 16, 64 * GiB);
        var slot = Assert.Single(inventory.Devices);
        Assert.Equal(("cpu:0", 16, 64 * GiB), (slot.Id, slot.Threads, slot.MemoryTotalBytes));
    }

    [Theory]
    [InlineData("Include", "GPU0")]
    [InlineData("Exclude", "cuda:0")]
    public void A_gpu_name_that_is_no_index_or_uuid_is_refused_naming_it(string setting, string name)
    {
        var smi = NvidiaSmiInventory.Parse(Fixture("query-basic.csv"));
        var options = setting == "Include" ? new DeviceInventoryOptions { Include = [name] } : new DeviceInventoryOptions { Exclude = [name] };
        var error = Assert.Throws<InvalidOperationException>(() => DeviceInventory.Discover(options, () => null, () => smi, 16, 64 * GiB));
        Assert.Contains($"Pool:{setting} names '{name}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("GPU-57D61C14-4445-31E3-630B-FBD2DB9F33A3", error.Message, StringComparison.OrdinalIgnoreCase); // what it could have named
    }

    [Fact]
    public void A_well_formed_name_of_a_gpu_the_node_lacks_is_reported_not_refused()
    {
        // A GPU fallen off the bus, or an Exclude shared by a group of nodes: the node serves on what it has.
        var smi = NvidiaSmiInventory.Parse(Fixture("query-basic.csv"));
        var inventory = DeviceInventory.Discover(new DeviceInventoryOptions { Exclude = ["GPU-00000000-0000-0000-0000-000000000000", "3"] }, () => null, () => smi, 16, 64 * GiB);
        Assert.Equal("cuda:0", Assert.Single(inventory.Devices).Id);
        Assert.Equal(["GPU-00000000-0000-0000-0000-000000000000", "3"], inventory.Unmatched);
        Assert.Equal("cuda:0", Assert.Single(DeviceInventory.Discover(new DeviceInventoryOptions { Include = ["0"] }, () => null, () => smi, 16, 64 * GiB).Devices).Id);
    }

    [Fact]
    public void Configured_cpu_slots_share_the_cores()
    {
        var inventory = DeviceInventory.Discover(new DeviceInventoryOptions { CpuSlots = 4 }, () => null, () => null, 16, 64 * GiB);
        Assert.Equal(["cpu:0", "cpu:1", "cpu:2", "cpu:3"], inventory.Devices.Select(d => d.Id));
        Assert.All(inventory.Devices, d => Assert.Equal((4, 16 * GiB), (d.Threads, d.MemoryTotalBytes)));
        Assert.Equal("none", inventory.Source);
    }

    [Fact]
    public void On_this_machine_nvml_is_unavailable_and_says_why()
    {
        // No build machine has a GPU: the real P/Invoke path must fail soft, naming the library.
        Assert.Null(NvmlInventory.Query(out var reason));
        Assert.Contains("libnvidia-ml.so.1", reason, StringComparison.Ordinal);
    }
}
