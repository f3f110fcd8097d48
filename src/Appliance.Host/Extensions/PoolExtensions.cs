using Appliance.Api.Admin;
using Appliance.Engine.Pool;
using Appliance.Api.Models;
using Appliance.Host.Options;
using Appliance.Host.Pool;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Extensions;

/// <summary>
/// The node's devices (configuration "Pool": Include, Exclude, CpuSlots, ThreadsPerCpuSlot, CpuSlotMemoryBytes) and how
/// they are shared (Placement, TenantWeights, InteractivePerBatch, UnloadGracePeriod).
/// </summary>
public static partial class PoolExtensions
{
    public static WebApplicationBuilder AddAppliancePool(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(PoolOptions.Section).Get<DeviceInventoryOptions>() ?? new DeviceInventoryOptions();
        builder.Services.AddOptions<PoolOptions>()
            .Bind(builder.Configuration.GetSection(PoolOptions.Section))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<PoolOptions>, PoolOptionsValidator>();
        builder.Services.AddSingleton<ITenancy, TeamTenancy>();
        builder.Services.AddSingleton(services =>
        {
            var inventory = DeviceInventory.DiscoverHere(options);
            var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("Appliance.Pool");
            LogDevices(logger, inventory.Source, string.Join(", ", inventory.Devices.Select(d =>
                $"{d.Id} {d.Name} ({d.MemoryTotalBytes / (1024 * 1024 * 1024)} GiB{(d.Healthy ? string.Empty : ", unhealthy")})")));
            if (inventory.Unmatched.Count > 0)
            {
                LogUnmatchedGpus(logger, string.Join(", ", inventory.Unmatched));
            }
            return new NodeDevices(inventory.Source, inventory.Devices);
        });
        return builder;
    }

    [LoggerMessage(EventId = 5000, Level = LogLevel.Information, Message = "Devices (GPU list from {Source}): {Devices}")]
    private static partial void LogDevices(ILogger logger, string source, string devices);

    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "Pool:Include/Exclude name GPUs this node does not have: {Names} (a GPU gone from the bus, or another node's)")]
    private static partial void LogUnmatchedGpus(ILogger logger, string names);
}
