namespace Appliance.Prompting.Jinja;

/// <summary>
/// A parsed Jinja template (the subset chat templates use). Parsing happens once, when the model loads, and fails
/// loudly on anything not understood; rendering is then safe to call from any thread.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly IReadOnlyList<Node> _nodes;

    private JinjaTemplate(IReadOnlyList<Node> nodes) => _nodes = nodes;

    public static JinjaTemplate Parse(string source) => new(JinjaParser.Parse(source));

    /// <summary>Renders with context values made of strings, numbers, booleans, null, lists and string-keyed dictionaries.</summary>
    public string Render(IReadOnlyDictionary<string, object?> context) => JinjaRenderer.Render(_nodes, context);
}
