using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Appliance.Runtime.Onnx.Models;

/// <summary>One file of a model folder with its size and SHA-256.</summary>
public sealed record ManifestFile(
    [property: JsonPropertyName("path")] string Path,
    [property: JsonPropertyName("size")] long Size,
    [property: JsonPropertyName("sha256")] string Sha256);

/// <summary>
/// The appliance's manifest.json: the SHA-256 of every file of a model folder, checked before the model loads.
/// The model digest (recorded in audit events) is the SHA-256 of the manifest's canonical form.
/// </summary>
public sealed record ModelManifest(
    [property: JsonPropertyName("formatVersion")] int FormatVersion,
    [property: JsonPropertyName("files")] IReadOnlyList<ManifestFile> Files)
{
    public const string FileName = "manifest.json";

    private static readonly JsonSerializerOptions WriteOptions = new() { WriteIndented = true };

    /// <summary>"sha256:" followed by the hex digest over "path\tsize\tsha256\n" lines in ordinal path order.</summary>
    public string Digest
    {
        get
        {
            var canonical = new StringBuilder();
            foreach (var file in Files.OrderBy(f => f.Path, StringComparer.Ordinal))
            {
                canonical.Append(file.Path).Append('\t').Append(file.Size).Append('\t').Append(file.Sha256).Append('\n');
            }

            return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())));
        }
    }

    /// <summary>Hashes every file under <paramref name="folder"/> (except the manifest) and writes manifest.json.</summary>
    public static ModelManifest Create(string folder)
    {
        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => System.IO.Path.GetRelativePath(folder, f).Replace('\\', '/'))
            .Where(p => p != FileName)
            .OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => new ManifestFile(p, new FileInfo(System.IO.Path.Combine(folder, p)).Length, HashFile(System.IO.Path.Combine(folder, p))))
            .ToList();
        var manifest = new ModelManifest(1, files);
        File.WriteAllText(System.IO.Path.Combine(folder, FileName), JsonSerializer.Serialize(manifest, WriteOptions));
        return manifest;
    }

    /// <summary>
    /// Reads manifest.json and checks every listed file; throws naming the first file that is missing or differs, or
    /// a file in the folder the manifest does not list (it could change what the model does, such as a tokenizer or a
    /// chat template, without changing the digest).
    /// </summary>
    public static ModelManifest Verify(string folder)
    {
        var manifest = Read(folder);
        var root = System.IO.Path.GetFullPath(folder);
        foreach (var file in manifest.Files)
        {
            var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(root, file.Path));
            if (!full.StartsWith(root + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                throw new ModelFolderException($"{folder}: manifest entry '{file.Path}' points outside the folder.");
            }

            if (!File.Exists(full))
            {
                throw new ModelFolderException($"{folder}: file '{file.Path}' listed in the manifest is missing.");
            }

            var size = new FileInfo(full).Length;
            if (size != file.Size || !string.Equals(HashFile(full), file.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                throw new ModelFolderException($"{folder}: file '{file.Path}' does not match its SHA-256 in the manifest; the folder is refused.");
            }
        }

        var listed = manifest.Files.Select(f => f.Path).ToHashSet(StringComparer.Ordinal);
        List<string> unlisted;
        try
        {
            unlisted = [.. Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
                .Select(f => System.IO.Path.GetRelativePath(folder, f).Replace('\\', '/'))
                .Where(p => p != FileName && !listed.Contains(p))
                .Order(StringComparer.Ordinal)];
        }
        catch (Exception exception) when (exception is UnauthorizedAccessException or IOException)
        {
            throw new ModelFolderException($"{folder}: the folder cannot be listed to check it holds only manifest files: {exception.Message}", exception);
        }
        if (unlisted.Count > 0)
        {
            throw new ModelFolderException(
                $"{folder}: {string.Join(", ", unlisted.Take(3).Select(p => $"'{p}'"))}{(unlisted.Count > 3 ? $" and {unlisted.Count - 3} more" : string.Empty)} "
                + $"not listed in the manifest; a file the manifest does not cover could change the model's behaviour without changing its digest. "
                + $"Remove it, or recreate the manifest ('appliance model manifest {folder}') if it belongs to the model.");
        }

        return manifest;
    }

    public bool Lists(string relativePath) => Files.Any(f => f.Path == relativePath);

    private static ModelManifest Read(string folder)
    {
        var path = System.IO.Path.Combine(folder, FileName);
        if (!File.Exists(path))
        {
            throw new ModelFolderException($"{folder}: no {FileName}; every model folder needs one (create it with 'appliance model manifest {folder}').");
        }

        try
        {
            var manifest = JsonSerializer.Deserialize<ModelManifest>(File.ReadAllBytes(path));
            if (manifest is null || manifest.FormatVersion != 1 || manifest.Files is null || manifest.Files.Count == 0 ||
                manifest.Files.Any(f => string.IsNullOrEmpty(f?.Path) || string.IsNullOrEmpty(f.Sha256)))
            {
                throw new ModelFolderException($"{path}: expected formatVersion 1 and a non-empty 'files' list of path, size and sha256.");
            }

            return manifest;
        }
        catch (JsonException exception)
        {
            throw new ModelFolderException($"{path}: not valid JSON: {exception.Message}", exception);
        }
    }

    private static string HashFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
