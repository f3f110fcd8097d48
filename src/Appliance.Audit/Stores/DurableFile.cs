using System.Runtime.InteropServices;

namespace Appliance.Audit.Stores;

/// <summary>
/// Writes the small files the audit trail depends on (content keys, the checkpoint key, the syslog cursor) so that a
/// power cut cannot undo them once the call returns: the bytes reach the disk before the name, and the name before
/// the caller goes on. A content key lost after its sealed text was committed would make that text unreadable for
/// good; a destroyed key that comes back would undo a deletion an administrator was told was done.
/// </summary>
public static partial class DurableFile
{
    /// <summary>
    /// Writes <paramref name="content"/> beside <paramref name="path"/>, flushes it to the disk and renames it into
    /// place: a crash leaves the old file or the whole new one, never a short one.
    /// </summary>
    /// <param name="ownerOnly">Created readable by the owner only (keys): never, even briefly, readable by others.</param>
    /// <param name="overwrite">Whether an existing file is replaced; when false, an existing one makes this throw.</param>
    public static void Write(string path, ReadOnlySpan<byte> content, bool ownerOnly, bool overwrite)
    {
        var temporary = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (ownerOnly && !OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            File.Delete(temporary); // the mode applies only to a file this call creates
        }

        using (var stream = new FileStream(temporary, options))
        {
            stream.Write(content);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite);
        SyncFolderOf(path);
    }

    /// <summary>Deletes <paramref name="path"/> and makes the deletion itself survive a crash.</summary>
    public static void Delete(string path)
    {
        File.Delete(path);
        SyncFolderOf(path);
    }

    /// <summary>
    /// Flushes a folder's entries (a rename or deletion in it) to the disk. .NET opens no folder handles, hence the
    /// system calls; elsewhere than Linux and macOS this does nothing.
    /// </summary>
    public static void SyncFolderOf(string path)
    {
        if (!(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()))
        {
            return;
        }

        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var descriptor = Open(folder, 0); // O_RDONLY
        if (descriptor < 0)
        {
            throw new IOException($"Cannot open folder {folder} to flush it (errno {Marshal.GetLastPInvokeError()}).");
        }

        try
        {
            if (Fsync(descriptor) != 0)
            {
                throw new IOException($"Flushing folder {folder} to the disk failed (errno {Marshal.GetLastPInvokeError()}).");
            }
        }
        finally
        {
            _ = Close(descriptor);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int descriptor);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int descriptor);
}
