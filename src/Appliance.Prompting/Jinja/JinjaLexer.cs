using System.Text;

namespace Appliance.Prompting.Jinja;

/// <summary>A piece of template source: literal text, an output tag {{ }} or a statement tag {% %}.</summary>
internal enum SegmentKind
{
    Text,
    Output,
    Statement,
}

internal sealed record Segment(SegmentKind Kind, string Content, int Line);

/// <summary>
/// Splits template source into text and tags, applying whitespace control as Hugging Face configures Jinja:
/// "-" on a tag strips whitespace beside it, trim_blocks drops the newline after a block tag, lstrip_blocks strips
/// the indentation before one. Comments are removed.
/// </summary>
internal static class JinjaLexer
{
    public static List<Segment> Split(string source)
    {
        var raw = new List<(SegmentKind Kind, string Content, int Line, bool TrimBefore, bool TrimAfter, bool Block, bool KeepIndent)>();
        var i = 0;
        var line = 1;
        var text = new StringBuilder();
        while (i < source.Length)
        {
            if (source[i] == '{' && i + 1 < source.Length && source[i + 1] is '{' or '%' or '#')
            {
                var opener = source[i + 1];
                var closer = opener switch { '{' => "}}", '%' => "%}", _ => "#}" };
                var start = i + 2;
                var trimBefore = start < source.Length && source[start] == '-';
                var keepIndent = start < source.Length && source[start] == '+';
                if (trimBefore || keepIndent)
                {
                    start++;
                }

                var end = FindCloser(source, start, closer, opener != '#');
                if (end < 0)
                {
                    throw new ChatTemplateException($"line {line}: tag opened with '{{{opener}' is never closed");
                }

                var contentEnd = end;
                var trimAfter = contentEnd > start && source[contentEnd - 1] == '-';
                if (trimAfter)
                {
                    contentEnd--;
                }

                raw.Add((SegmentKind.Text, text.ToString(), line, false, false, false, false));
                text.Clear();
                var content = source[start..contentEnd];
                var kind = opener switch { '{' => SegmentKind.Output, '%' => SegmentKind.Statement, _ => (SegmentKind)(-1) };
                raw.Add((kind, content.Trim(), line, trimBefore, trimAfter, opener != '{', keepIndent));
                line += source.AsSpan(i, end + 2 - i).Count('\n');
                i = end + 2;
                continue;
            }

            if (source[i] == '\n')
            {
                line++;
            }

            text.Append(source[i]);
            i++;
        }

        raw.Add((SegmentKind.Text, text.ToString(), line, false, false, false, false));
        return ApplyWhitespaceControl(raw);
    }

    private static List<Segment> ApplyWhitespaceControl(List<(SegmentKind Kind, string Content, int Line, bool TrimBefore, bool TrimAfter, bool Block, bool KeepIndent)> raw)
    {
        var texts = raw.Select(r => r.Content).ToArray();
        for (var k = 0; k < raw.Count; k++)
        {
            var tag = raw[k];
            if (tag.Kind == SegmentKind.Text)
            {
                continue;
            }

            // Tags alternate with text segments, so k - 1 and k + 1 are texts.
            if (tag.TrimBefore)
            {
                texts[k - 1] = texts[k - 1].TrimEnd();
            }
            else if (tag.Block && !tag.KeepIndent)
            {
                texts[k - 1] = StripIndentation(texts[k - 1], k - 1 == 0);
            }

            if (tag.TrimAfter)
            {
                texts[k + 1] = texts[k + 1].TrimStart();
            }
            else if (tag.Block)
            {
                texts[k + 1] = texts[k + 1].StartsWith("\r\n", StringComparison.Ordinal) ? texts[k + 1][2..]
                    : texts[k + 1].StartsWith('\n') ? texts[k + 1][1..] : texts[k + 1];
            }
        }

        var segments = new List<Segment>();
        for (var k = 0; k < raw.Count; k++)
        {
            var kind = raw[k].Kind;
            if (kind == SegmentKind.Text && texts[k].Length > 0)
            {
                segments.Add(new Segment(kind, texts[k], raw[k].Line));
            }
            else if (kind is SegmentKind.Output or SegmentKind.Statement)
            {
                segments.Add(new Segment(kind, texts[k], raw[k].Line));
            }
        }

        return segments;
    }

    /// <summary>lstrip_blocks: spaces and tabs between the last newline (or the start) and a block tag go.</summary>
    private static string StripIndentation(string text, bool atTemplateStart)
    {
        var lastNewline = text.LastIndexOf('\n');
        if (lastNewline < 0 && !atTemplateStart)
        {
            return text;
        }

        var tail = text.AsSpan(lastNewline + 1);
        foreach (var c in tail)
        {
            if (c is not (' ' or '\t'))
            {
                return text;
            }
        }

        return text[..(lastNewline + 1)];
    }

    private static int FindCloser(string source, int from, string closer, bool skipStrings)
    {
        char? quote = null;
        for (var i = from; i < source.Length - 1; i++)
        {
            var c = source[i];
            if (quote is { } q)
            {
                if (c == '\\')
                {
                    i++;
                }
                else if (c == q)
                {
                    quote = null;
                }

                continue;
            }

            if (skipStrings && c is '\'' or '"')
            {
                quote = c;
                continue;
            }

            if (c == closer[0] && source[i + 1] == closer[1])
            {
                return i;
            }
        }

        return -1;
    }
}
