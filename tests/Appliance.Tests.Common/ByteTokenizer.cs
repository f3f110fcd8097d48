using System.Text;
using Appliance.Engine;

namespace Appliance.Tests.Common;

/// <summary>
/// A byte-level test tokenizer: token id = one UTF-8 byte (0-255), so multi-byte characters always span several
/// tokens. Ids 256 and above decode to nothing (use them as EOS or padding).
/// </summary>
public sealed class ByteTokenizer : ITokenizer
{
    public IReadOnlyList<int> Encode(string text) => [.. Encoding.UTF8.GetBytes(text).Select(b => (int)b)];

    public string Decode(IEnumerable<int> ids) => Encoding.UTF8.GetString([.. ids.Where(i => i < 256).Select(i => (byte)i)]);
}
