namespace Appliance.Host.Tls;

/// <summary>
/// A value read from files (a certificate and its key, a CA bundle) and read again once one of them changes (size or
/// last write time), so that files Ansible renews take effect on the next TLS handshake without a restart. Files that
/// cannot be read, or whose value the replacement check refuses, leave the value read before in use.
/// </summary>
internal sealed class FileBackedValue<T> where T : class
{
    /// <summary>How often a handshake looks at the files: one stat per file per second at most, however many connections arrive.</summary>
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long files found unreadable on a handshake must stay so before a warning: Ansible copies a certificate and
    /// then its key, and a handshake between the two finds a pair that does not match for a moment.
    /// </summary>
    private static readonly TimeSpan WarnAfter = TimeSpan.FromSeconds(5);

    /// <summary>How long unchanged files that were refused are not read again (a certificate not yet valid becomes valid).</summary>
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(60);

    private readonly Func<T> _load;
    private readonly Action<T> _checkReplacement;
    private readonly Func<int> _checkInputsVersion;
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private Loaded _loaded;
    private long _nextCheck;
    private Failure? _failure;

    /// <summary>
    /// Reads the files now: a value that cannot be read at start is a configuration error, thrown to the caller.
    /// <paramref name="checkReplacement"/> throws when a value read later must not replace the one in use; what it
    /// checks against may change (<paramref name="checkInputsVersion"/>), and then files it refused are tried again.
    /// </summary>
    public FileBackedValue(string description, IReadOnlyList<string> paths, Func<T> load, Action<T> checkReplacement, Func<int> checkInputsVersion, TimeProvider time)
    {
        Description = description;
        Paths = paths;
        _load = load;
        _checkReplacement = checkReplacement;
        _checkInputsVersion = checkInputsVersion;
        _time = time;
        var stamp = Stamp();
        _loaded = new Loaded(ReadAtStart(), stamp);
        _nextCheck = time.GetTimestamp() + ToTicks(CheckInterval);
    }

    /// <summary>What the value is, in the words an operator's message needs ("Kestrel:Endpoints:Cluster:Certificate").</summary>
    public string Description { get; }

    public IReadOnlyList<string> Paths { get; }

    /// <summary>Counts the values put in use: a connection checked against one value need not be checked again until it changes.</summary>
    public int Version => Volatile.Read(ref _loaded).Version;

    /// <summary>The value in use, without looking at the files.</summary>
    public T InUse => Volatile.Read(ref _loaded).Value;

    /// <summary>Raised (with the error) when changed files cannot be read and stay so, once per change of the files.</summary>
    public event Action<FileBackedValue<T>, Exception>? ReadFailed;

    /// <summary>Raised when changed files were read and are now in use.</summary>
    public event Action<FileBackedValue<T>>? Reloaded;

    /// <summary>The value, read again first when a second has passed since the last look and the files changed since.</summary>
    public T Current
    {
        get
        {
            var now = _time.GetTimestamp();
            if (now >= Volatile.Read(ref _nextCheck))
            {
                Volatile.Write(ref _nextCheck, now + ToTicks(CheckInterval));
                TryReload();
            }

            return InUse;
        }
    }

    /// <summary>Reads the files again if they changed since they were read; throws what kept changed files from being used (the value in use stays).</summary>
    public T Reload()
    {
        lock (_gate)
        {
            var stamp = Stamp();
            if (stamp == _loaded.Stamp)
            {
                return _loaded.Value;
            }

            Use(Read(check: true), stamp);
            return _loaded.Value;
        }
    }

    private void TryReload()
    {
        lock (_gate)
        {
            var stamp = Stamp();
            if (stamp == _loaded.Stamp)
            {
                return;
            }

            var known = _failure is { } failure && failure.Stamp == stamp && failure.InputsVersion == _checkInputsVersion() ? failure : null;
            if (known is not null && _time.GetElapsedTime(known.Since) < RetryAfter)
            {
                if (!known.Reported && _time.GetElapsedTime(known.Since) >= WarnAfter)
                {
                    _failure = known with { Reported = true };
                    ReadFailed?.Invoke(this, known.Error);
                }

                return;
            }

            var inputs = _checkInputsVersion();
            try
            {
                var value = Read(check: true);
                if (Stamp() == stamp)
                {
                    Use(value, stamp);
                }

                // Otherwise written while being read (not by a copy that renames): read on the next look.
            }
            catch (InvalidDataException exception)
            {
                if (Stamp() == stamp)
                {
                    _failure = new Failure(stamp, inputs, exception, _time.GetTimestamp(), Reported: known?.Reported ?? false);
                }
            }
        }
    }

    private void Use(T value, string stamp)
    {
        _loaded = new Loaded(value, stamp, _loaded.Version + 1);
        _failure = null;
        Reloaded?.Invoke(this);
    }

    private T Read(bool check)
    {
        try
        {
            var value = _load();
            if (check)
            {
                _checkReplacement(value);
            }

            return value;
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            // Whatever a file holds must not escape into a TLS handshake: it is named, and the value in use stays.
            throw new InvalidDataException($"{Description} ({string.Join(", ", Paths)}): {exception.Message}", exception);
        }
    }

    /// <summary>
    /// The first read, as a settings mistake: the node stops and says which file and why (exit 78, not restarted), or
    /// that a file does not exist (exit 1: it may be on a disk not mounted yet).
    /// </summary>
    private T ReadAtStart()
    {
        try
        {
            return Read(check: false);
        }
        catch (InvalidDataException) when (RecentlyWritten())
        {
            // Ansible copies a certificate, then its key: a start between the two finds a pair that does not match.
            Thread.Sleep(WarnAfter);
        }
        catch (InvalidDataException exception)
        {
            throw AsSettingsMistake(exception);
        }

        try
        {
            return Read(check: false);
        }
        catch (InvalidDataException exception)
        {
            throw AsSettingsMistake(exception);
        }
    }

    private SettingsException AsSettingsMistake(InvalidDataException exception) =>
        Paths.FirstOrDefault(path => !File.Exists(path)) is { } missing
            ? new SettingsException($"{Description}: '{missing}' {SettingsMistakes.Missing}")
            : exception.InnerException as SettingsException ?? new SettingsException(exception.Message);

    private bool RecentlyWritten() =>
        Paths.Any(path => File.Exists(path) && DateTime.UtcNow - File.GetLastWriteTimeUtc(path) < TimeSpan.FromSeconds(10));

    /// <summary>Each file's size and last write time (or its absence): a copy that replaces a file changes both or the time at least.</summary>
    private string Stamp() => string.Join('|', Paths.Select(path =>
    {
        var file = new FileInfo(path);
        return file.Exists ? $"{file.Length}@{file.LastWriteTimeUtc.Ticks}" : "missing";
    }));

    private long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    private sealed record Loaded(T Value, string Stamp, int Version = 0);

    private sealed record Failure(string Stamp, int InputsVersion, InvalidDataException Error, long Since, bool Reported);
}
