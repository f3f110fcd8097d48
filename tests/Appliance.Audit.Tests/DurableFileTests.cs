using Appliance.Audit.Stores;
using Appliance.Tests.Common;

namespace Appliance.Audit.Tests;

/// <summary>
/// The key and cursor files are written whole or not at all, keys are never readable by others, and an existing key
/// is never replaced. (That the bytes reach the disk before a power cut cannot be observed here; the flushes are
/// exercised, and a folder that cannot be flushed is an error, not a silent success.)
/// </summary>
public sealed class DurableFileTests : IDisposable
{
    private readonly TempFolder _folder = new("durable-file");

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void A_key_is_written_whole_owner_only_and_leaves_no_scratch_file()
    {
        var path = _folder.Combine("scope.key");

        DurableFile.Write(path, [1, 2, 3, 4], ownerOnly: true, overwrite: false);

        Assert.Equal(new byte[] { 1, 2, 3, 4 }, File.ReadAllBytes(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(["scope.key"], Directory.GetFiles(_folder.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void An_existing_key_is_never_replaced()
    {
        var path = _folder.Combine("scope.key");
        DurableFile.Write(path, [1], ownerOnly: true, overwrite: false);

        Assert.Throws<IOException>(() => DurableFile.Write(path, [2], ownerOnly: true, overwrite: false));

        Assert.Equal(new byte[] { 1 }, File.ReadAllBytes(path));
    }

    [Fact]
    public void A_cursor_is_replaced_and_a_deleted_file_is_gone()
    {
        var path = _folder.Combine("cursor");
        DurableFile.Write(path, "41"u8, ownerOnly: false, overwrite: true);
        DurableFile.Write(path, "42"u8, ownerOnly: false, overwrite: true);
        Assert.Equal("42", File.ReadAllText(path));

        DurableFile.Delete(path);

        Assert.False(File.Exists(path));
    }

    [Fact]
    public void A_folder_that_cannot_be_flushed_is_an_error()
    {
        var missing = Path.Combine(_folder.Path, "gone", "cursor");

        var failure = Assert.Throws<IOException>(() => DurableFile.SyncFolderOf(missing));

        Assert.Contains("gone", failure.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _folder.Dispose();
}
