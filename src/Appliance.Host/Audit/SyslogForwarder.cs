using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Appliance.Audit;
using Appliance.Audit.Export;
using Appliance.Audit.Stores;
using Appliance.Host.Options;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Audit;

/// <summary>
/// Sends this node's audit entries, in chain order, to the configured syslog target. It reads from the store, not from
/// memory, and keeps a cursor file that moves past an entry once the target has it, so an unreachable SIEM or a restart
/// delays entries but loses none (at least once; the "seq" and "hash" parameters let the SIEM drop duplicates). Over
/// RELP the target acknowledges each entry; over plain TCP what sat in the socket's buffers when the receiver went away
/// is lost. Without a cursor it starts at the current end.
/// </summary>
internal sealed partial class SyslogForwarder(AuditLog log, IOptions<AuditOptions> options, IOptions<ApplianceOptions> appliance, ILogger<SyslogForwarder> logger)
    : BackgroundService
{
    private const int Page = 500;
    private long _forwarded = -1; // the cursor, once read
    private volatile bool _unreachable;

    /// <summary>Entries of this node's chain written but not yet delivered to the target (null until the cursor is read).</summary>
    public long? Pending => Interlocked.Read(ref _forwarded) is >= 0 and var forwarded ? Math.Max(0, log.LastSequence - forwarded) : null;

    /// <summary>Whether the target could not be reached (or refused) at the last attempt.</summary>
    public bool Unreachable => _unreachable;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value.Syslog;
        var target = new Uri(settings.Target);
        var cursorPath = Path.Combine(appliance.Value.DataFolder, "audit", $"syslog-cursor-{log.Node}.txt");
        long? cursor = null;
        ISyslogSender? sender = null;
        var failing = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            IReadOnlyList<AuditEntry> entries;
            try
            {
                cursor ??= ReadCursor(cursorPath);
                Interlocked.Exchange(ref _forwarded, cursor.Value);
                entries = log.Store.Query(log.Node, new AuditQuery { AfterSequence = cursor.Value, Limit = Page });
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                // The store may be briefly unavailable (a locked file, a PostgreSQL restart): wait and read again.
                LogStoreUnavailable(logger, exception.Message);
                await Delay(TimeSpan.FromSeconds(5), stoppingToken);
                continue;
            }

            if (entries.Count == 0)
            {
                await Delay(settings.PollInterval, stoppingToken);
                continue;
            }

            try
            {
                sender ??= await ConnectAsync(target, settings, stoppingToken);
                var messages = entries.Select(entry => Encoding.UTF8.GetBytes(SyslogFormatter.Format(entry, settings.AppName, settings.StructuredDataId))).ToList();
                await sender.SendAsync(messages, delivered => cursor = entries[delivered].Sequence, stoppingToken);

                if (failing)
                {
                    LogResumed(logger, settings.Target);
                    failing = false;
                    _unreachable = false;
                }
            }
            catch (Exception exception) when (exception is SocketException or IOException)
            {
                if (!failing)
                {
                    LogUnreachable(logger, settings.Target, exception.Message);
                    failing = true;
                    _unreachable = true;
                }

                sender?.Dispose();
                sender = null;
                await Delay(TimeSpan.FromSeconds(5), stoppingToken);
            }
            finally
            {
                Interlocked.Exchange(ref _forwarded, cursor.Value);
                try
                {
                    WriteCursor(cursorPath, cursor.Value);
                }
                catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
                {
                    // A full disk: the entries go again after a restart (at least once), the node keeps serving.
                    LogCursorNotWritten(logger, cursorPath, exception.Message);
                }
            }
        }

        sender?.Dispose();
    }

    /// <summary>
    /// The last sequence sent. Without a cursor file forwarding starts at the current end; an unreadable one (it is
    /// replaced atomically, so only outside damage does that) restarts from the beginning: entries may be sent twice
    /// (the SIEM drops duplicates by "seq" and "hash"), never lost.
    /// </summary>
    private long ReadCursor(string path)
    {
        if (!File.Exists(path))
        {
            return log.Store.Head(log.Node)?.Sequence ?? 0;
        }

        var text = File.ReadAllText(path).Trim();
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var cursor))
        {
            return cursor;
        }

        LogCursorDamaged(logger, path, text.Length > 40 ? text[..40] : text);
        return 0;
    }

    /// <summary>Written beside, flushed and renamed over the cursor, so a crash leaves the old or the new value.</summary>
    private static void WriteCursor(string path, long cursor)
    {
        // Nothing else may have made the folder (the store in PostgreSQL, the checkpoint key outside the data folder).
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Appliance.Audit.Stores.DurableFile.Write(path, System.Text.Encoding.ASCII.GetBytes(cursor.ToString(CultureInfo.InvariantCulture)), ownerOnly: false, overwrite: true);
    }

    private static async Task<ISyslogSender> ConnectAsync(Uri target, SyslogOptions settings, CancellationToken cancellation)
    {
        switch (target.Scheme)
        {
            case "udp":
                return new UdpSyslogSender(target.Host, target.Port, settings.MaxUdpBytes);
            case "relp":
                return await RelpSyslogSender.OpenAsync(target.Host, target.Port, settings.AnswerTimeout, cancellation);
            default:
                var client = new TcpClient();
                try
                {
                    await client.ConnectAsync(target.Host, target.Port, cancellation);
                }
                catch
                {
                    client.Dispose();
                    throw;
                }

                return new TcpSyslogSender(client);
        }
    }

    private static async Task Delay(TimeSpan delay, CancellationToken cancellation)
    {
        try
        {
            await Task.Delay(delay, cancellation);
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(EventId = 4032, Level = LogLevel.Warning, Message = "The audit store cannot be read for syslog forwarding ({Reason}); retrying")]
    private static partial void LogStoreUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 4013, Level = LogLevel.Warning, Message = "The syslog cursor {Path} is unreadable ('{Content}'); forwarding restarts from the first entry (the SIEM drops duplicates by seq and hash)")]
    private static partial void LogCursorDamaged(ILogger logger, string path, string content);

    [LoggerMessage(EventId = 4014, Level = LogLevel.Warning, Message = "The syslog cursor {Path} cannot be written ({Reason}); entries since the last write may be sent again after a restart")]
    private static partial void LogCursorNotWritten(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 4030, Level = LogLevel.Warning, Message = "The syslog target {Target} is unreachable ({Reason}); audit entries wait and are sent when it is back")]
    private static partial void LogUnreachable(ILogger logger, string target, string reason);

    [LoggerMessage(EventId = 4031, Level = LogLevel.Information, Message = "The syslog target {Target} is reachable again; forwarding resumed")]
    private static partial void LogResumed(ILogger logger, string target);
}
