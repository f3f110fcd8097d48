using System.Text.Json;

namespace Appliance.Tests.Common;

/// <summary>The real Lark parser (Debian's python3-lark, tests/reference-py/lark_parse.py), the reference for the appliance's Lark grammars.</summary>
public static class ReferenceLark
{
    /// <summary>For each text, whether Lark's Earley parser parses it from the grammar's 'start' rule.</summary>
    public static IReadOnlyList<bool> Parses(string grammar, IReadOnlyList<string> texts) =>
        JsonSerializer.Deserialize<List<bool>>(ReferencePython.Run("lark_parse.py", new { grammar, texts }, "python3-lark"))!;
}
