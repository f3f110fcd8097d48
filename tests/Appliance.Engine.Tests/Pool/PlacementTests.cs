using Appliance.Engine.Pool;

namespace Appliance.Engine.Tests.Pool;

public sealed class PlacementTests
{
    private const long GiB = 1024L * 1024 * 1024;

    private static readonly PoolDevice[] Gpus =
    [
        new(DeviceKind.Cuda, 0, "A100 80GB", 80 * GiB, 0),
        new(DeviceKind.Cuda, 1, "L40S 48GB", 48 * GiB, 0),
        new(DeviceKind.Cuda, 2, "A10 24GB", 24 * GiB, 0),
    ];

    [Fact]
    public void Pack_fills_the_tightest_fit_and_keeps_the_big_device_free()
    {
        var placements = Placer.Place([new ReplicaDemand("small", 1, 10 * GiB), new ReplicaDemand("medium", 1, 30 * GiB)], Gpus, new PackPlacement());
        // medium: cuda:2 is too small, cuda:1 is the tightest fit (18 GiB left); small: cuda:1 again is tightest.
        Assert.Equal([new ReplicaPlacement("medium", 0, "cuda:1"), new ReplicaPlacement("small", 0, "cuda:1")], placements);
    }

    [Fact]
    public void Spread_puts_each_replica_on_the_emptiest_device_and_never_two_of_one_model_together()
    {
        var placements = Placer.Place([new ReplicaDemand("chat", 3, 20 * GiB)], Gpus, new SpreadPlacement());
        Assert.Equal(["cuda:0", "cuda:1", "cuda:2"], placements.Select(p => p.DeviceId));
    }

    [Fact]
    public void A_full_device_is_passed_over()
    {
        PoolDevice[] devices = [Gpus[0] with { MemoryUsedBytes = 79 * GiB }, Gpus[1], Gpus[2]];
        Assert.Equal("cuda:1", Assert.Single(Placer.Place([new ReplicaDemand("m", 1, 30 * GiB)], devices, new PackPlacement())).DeviceId);
    }

    [Fact]
    public void When_nothing_fits_the_error_names_the_model_and_every_device_s_room()
    {
        var error = Assert.Throws<PlacementException>(() => Placer.Place([new ReplicaDemand("llama-70b", 2, 60 * GiB)], Gpus, new PackPlacement()));
        Assert.Equal("model 'llama-70b' needs 2 replica(s) of 60.0 GiB; replica 2 fits on no device: cuda:0 (holds replica of it already), cuda:1 (48.0 GiB free), cuda:2 (24.0 GiB free)", error.Message);
    }

    [Fact]
    public void When_a_device_disappears_only_its_replicas_move()
    {
        var before = Placer.Place([new ReplicaDemand("a", 1, 20 * GiB), new ReplicaDemand("b", 1, 20 * GiB)], Gpus, new SpreadPlacement());
        Assert.Equal(["cuda:0", "cuda:1"], before.Select(p => p.DeviceId));

        var after = Placer.Place([new ReplicaDemand("a", 1, 20 * GiB), new ReplicaDemand("b", 1, 20 * GiB)], [Gpus[1], Gpus[2]], new SpreadPlacement(), before);
        Assert.Equal([new ReplicaPlacement("a", 0, "cuda:2"), new ReplicaPlacement("b", 0, "cuda:1")], after); // b stays, a moves off cuda:0
    }

    [Fact]
    public void Unhealthy_devices_get_nothing_and_cpu_slots_take_models_on_a_machine_without_gpus()
    {
        PoolDevice[] devices = [Gpus[0] with { Healthy = false }, new(DeviceKind.Cpu, 0, "CPU slot", 16 * GiB, 0, Threads: 8)];
        Assert.Equal("cpu:0", Assert.Single(Placer.Place([new ReplicaDemand("m", 1, 2 * GiB)], devices, new SpreadPlacement())).DeviceId);
    }

    [Fact]
    public void A_demand_for_a_kind_of_device_goes_there_and_a_kept_replica_on_another_kind_moves()
    {
        PoolDevice[] devices = [.. Gpus, new(DeviceKind.Cpu, 0, "CPU slot", 256 * GiB, 0, Threads: 16)];
        // Spread alone would take the roomiest device, the CPU slot, for the GPU export.
        var placements = Placer.Place([new ReplicaDemand("gpu-export", 1, 10 * GiB, DeviceKind.Cuda), new ReplicaDemand("cpu-export", 1, 10 * GiB, DeviceKind.Cpu)], devices, new SpreadPlacement());
        Assert.Equal([new ReplicaPlacement("cpu-export", 0, "cpu:0"), new ReplicaPlacement("gpu-export", 0, "cuda:0")], placements);

        var moved = Placer.Place([new ReplicaDemand("cpu-export", 1, 10 * GiB, DeviceKind.Cpu)], devices, new SpreadPlacement(), [new ReplicaPlacement("cpu-export", 0, "cuda:1")]);
        Assert.Equal("cpu:0", Assert.Single(moved).DeviceId);
    }

    [Fact]
    public void A_demand_for_a_cpu_slot_on_a_node_without_one_says_how_to_get_one()
    {
        var error = Assert.Throws<PlacementException>(() => Placer.Place([new ReplicaDemand("phi-cpu-int4", 1, 3 * GiB, DeviceKind.Cpu)], Gpus, new SpreadPlacement()));
        Assert.Equal("model 'phi-cpu-int4' needs 1 replica(s) of 3.0 GiB; replica 1 fits on no CPU slot: this node has no CPU slot (Pool:CpuSlots gives a node with GPUs some)", error.Message);
    }

    [Fact]
    public void Strategies_are_chosen_by_name()
    {
        Assert.IsType<SpreadPlacement>(Placer.Strategy("spread"));
        Assert.Contains("pack or spread", Assert.Throws<ArgumentException>(() => Placer.Strategy("random")).Message, StringComparison.Ordinal);
    }
}
