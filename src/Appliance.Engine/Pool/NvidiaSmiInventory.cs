using System.Diagnostics;
using System.Globalization;

namespace Appliance.Engine.Pool;

/// <summary>
/// GPUs as `nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used --format=csv,noheader,nounits` lists them
/// (memory in MiB; more columns may follow). A value nvidia-smi cannot read ("[N/A]", "[Unknown Error]") marks the
/// device unhealthy rather than guessing.
/// </summary>
public static class NvidiaSmiInventory
{
    public const string QueryArguments = "--query-gpu=index,uuid,name,memory.total,memory.used --format=csv,noheader,nounits";

    private const long MiB = 1024 * 1024;

    public static IReadOnlyList<PoolDevice> Parse(string output)
    {
        var devices = new List<PoolDevice>();
        var number = 0;
        foreach (var line in output.Split('\n', StringSplitOptions.TrimEntries))
        {
            number++;
            if (line.Length == 0 || line.StartsWith("No devices were found", StringComparison.Ordinal))
            {
                continue;
            }

            var fields = line.Split(',', StringSplitOptions.TrimEntries);
            if (fields.Length < 5 || !int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            {
                throw new FormatException($"nvidia-smi output line {number} is not 'index, uuid, name, memory.total, memory.used': {line}");
            }

            var total = Mebibytes(fields[3]);
            var used = Mebibytes(fields[4]);
            devices.Add(new PoolDevice(DeviceKind.Cuda, index, fields[2], (total ?? 0) * MiB, (used ?? total ?? 0) * MiB, fields[1], Healthy: total is not null && used is not null));
        }

        return devices;
    }

    /// <summary>Runs nvidia-smi; null when it is not installed or fails (a machine without NVIDIA GPUs).</summary>
    public static IReadOnlyList<PoolDevice>? Query(TimeSpan timeout)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("nvidia-smi", QueryArguments) { RedirectStandardOutput = true, RedirectStandardError = true });
            if (process is null)
            {
                return null;
            }

            var output = process.StandardOutput.ReadToEndAsync();
            if (!process.WaitForExit(timeout))
            {
                process.Kill();
                return null;
            }

            return process.ExitCode == 0 ? Parse(output.Result) : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // not installed
        }
    }

    private static long? Mebibytes(string value) =>
        long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var mebibytes) ? mebibytes : null;
}
