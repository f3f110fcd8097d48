namespace Appliance.Tests.Common;

/// <summary>Test data no registry serves, in ../shared/data beside the repository (CI lays it there too).</summary>
public static class SharedData
{
    /// <summary>The full path of a file under shared/data; fails naming the path when it is not there.</summary>
    public static string File(string relativePath)
    {
        var path = Path.Combine(Path.GetDirectoryName(RepositoryPaths.Root)!, "shared", "data", relativePath);
        return System.IO.File.Exists(path)
            ? path
            : throw new FileNotFoundException($"test data missing: {path} (shared/data must lie beside the repository)", path);
    }
}
