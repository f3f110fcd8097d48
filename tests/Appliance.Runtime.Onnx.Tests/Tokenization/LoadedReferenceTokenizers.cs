using System.Collections.Concurrent;
using Appliance.Engine;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>
/// The reference families' tokenizers, each loaded once per test run: their tokenizer.json files are up to 33 MB and
/// took seconds to parse in every one of the dozens of test cases that read them. Loading itself stays tested (each
/// family is loaded here through <see cref="TokenizerLoader"/>, and the refusal tests load their own files).
/// </summary>
internal static class LoadedReferenceTokenizers
{
    private static readonly ConcurrentDictionary<string, Lazy<ITokenizer>> Loaded = new(StringComparer.Ordinal);

    public static ITokenizer For(string family) =>
        Loaded.GetOrAdd(family, name => new Lazy<ITokenizer>(() => TokenizerLoader.Load(ReferenceTokenizers.ModelFolder(name)))).Value;
}
