using System.Globalization;

namespace Appliance.Grammar.Language;

/// <summary>Where a token may run into the next one, and what is done about it.</summary>
internal sealed partial class LarkGrammar
{
    /// <summary>
    /// Marks where, inside the rules, a token could run into the next one (the lexer takes a terminal's longest match,
    /// so the two would read as one): the ignored text becomes required there; without %ignore the grammar is
    /// refused. Ignored text that could run into a token, or a token into ignored text, is refused too: neither can be
    /// set apart.
    /// </summary>
    private void FindTokenBoundaries()
    {
        var tokens = new Compiler(this, raw: true, MinRecursion, wide: true); // every engine's reading at once: a superset
        var boundaries = new LarkTokenBoundaries(key => tokens.TokenLanguage((TokenKey)key));
        _emptyToken = key => boundaries.AcceptsEmpty(key); // a terminal such as /(.*)/ may match nothing
        ComputeRuleSets();

        // Each %ignore is one token, as Lark makes it (%ignore /a+/ /b?/ is one terminal).
        var ignoredFirst = _ignored.Select(IgnoredKey).Distinct().ToList();
        var ignoredLast = ignoredFirst;
        var ruleTokens = _definitions.Values.Where(d => !d.Terminal).SelectMany(d => Leaves(d.Body)).Distinct().ToList();
        foreach (var gap in ignoredLast)
        {
            // (a run of the same ignored terminal reads as one: still ignored)
            if (ruleTokens.Concat(ignoredFirst.Where(other => other != gap)).FirstOrDefault(next => boundaries.RunsInto(gap, next)) is { } swallowed)
            {
                throw Refused($"The ignored {Describe(gap)} may run into {Describe(swallowed)}: the lexer would read them as one token.");
            }
        }

        foreach (var token in ruleTokens)
        {
            if (ignoredFirst.FirstOrDefault(gap => boundaries.RunsInto(token, gap)) is { } gap)
            {
                throw Refused($"{Describe(token)} may run into the ignored {Describe(gap)}: the lexer would read them as one token.");
            }
        }

        bool Conflict(IReadOnlyCollection<TokenKey> before, IReadOnlyCollection<TokenKey> after)
        {
            if (!boundaries.AnyRunsInto(before, after))
            {
                return false;
            }

            foreach (var last in before)
            {
                if (after.FirstOrDefault(first => boundaries.RunsInto(last, first)) is { } next)
                {
                    return _ignored.Count > 0
                        ? true
                        : throw Refused($"{Describe(last)} may run into {Describe(next)} right after it: the lexer would read the two as one token. Put something required between them (or %ignore whitespace and write it there).");
                }
            }

            return false;
        }

        foreach (var definition in _definitions.Values.Where(d => !d.Terminal))
        {
            foreach (var part in Parts(definition.Body))
            {
                if (part is Sequence sequence)
                {
                    var required = new bool[sequence.Items.Count];
                    for (var i = 0; i + 1 < sequence.Items.Count; i++)
                    {
                        // Each pair of tokens once, at the boundary just before the later one's item (looking back
                        // past items that may be empty), so that an empty item between them does not ask twice.
                        required[i] = Conflict(LastOfUpTo(sequence.Items, i), FirstOf(sequence.Items[i + 1]));
                        if (required[i] && NullableOf(sequence.Items[i + 1]))
                        {
                            _guardedItems.Add(sequence.Items[i + 1]); // required only where the item is not empty
                            required[i] = false;
                        }
                    }

                    _requiredGaps[sequence] = required;
                }
                else if (part is Repetition { Max: not 1 } repetition && Conflict(LastOf(repetition.Inner), FirstOf(repetition.Inner)))
                {
                    _requiredSeparators.Add(repetition);
                }
            }
        }
    }

    /// <summary>The tokens a rule's body names itself (terminals, strings, expressions, ranges), rules not followed.</summary>
    private IEnumerable<TokenKey> Leaves(Expr expr) => Parts(expr).Where(part => part is Text or Pattern or CharacterRange || (part is Reference r && _definitions[r.Name].Terminal)).Select(Key);

    private static string Describe(TokenKey token) => token.Kind switch
    {
        TokenKind.Terminal => $"the terminal {token.Value}",
        TokenKind.Text => $"\"{token.Value}\"",
        TokenKind.Pattern => $"/{token.Value}/",
        TokenKind.Ignored => "%ignore text",
        _ => "a character range",
    };

    /// <summary>An ignored expression as one token: a terminal by name, else the expression itself.</summary>
    private TokenKey IgnoredKey(Expr ignored)
    {
        if (ignored is Reference or Text or Pattern or CharacterRange)
        {
            return Key(ignored);
        }

        var key = new TokenKey(TokenKind.Ignored, _ignored.IndexOf(ignored).ToString(CultureInfo.InvariantCulture));
        _tokenParts.TryAdd(key, ignored);
        return key;
    }

    private TokenKey Key(Expr token)
    {
        var key = token switch
        {
            Reference r => new TokenKey(TokenKind.Terminal, r.Name),
            Text t => new TokenKey(TokenKind.Text, t.Value, t.IgnoreCase),
            Pattern p => new TokenKey(TokenKind.Pattern, p.Regex),
            CharacterRange c => new TokenKey(TokenKind.Range, $"{c.Low}-{c.High}"),
            _ => throw new InvalidOperationException($"not a token: {token}"),
        };
        _tokenParts.TryAdd(key, token);
        return key;
    }

    /// <summary>
    /// Per rule: whether it may be empty, and the tokens it may start and end with, found together until nothing
    /// changes (each rule's sets computed once, so rules that name each other many times cost nothing more).
    /// </summary>
    private void ComputeRuleSets()
    {
        var rules = _definitions.Values.Where(d => !d.Terminal).ToList();
        var dependents = rules.ToDictionary(rule => rule.Name, _ => new List<Definition>());
        foreach (var rule in rules)
        {
            (_first[rule.Name], _last[rule.Name], _nullable[rule.Name]) = ([], [], false);
            foreach (var named in References(rule.Body).Distinct().Where(name => !_definitions[name].Terminal))
            {
                dependents[named].Add(rule);
            }
        }

        // A worklist: a rule is looked at again only when a rule it names has changed, so a long chain of rules
        // settles in one pass from its end rather than one sweep per link.
        var pending = new Queue<Definition>(Enumerable.Reverse(rules));
        var queued = new HashSet<string>(rules.Select(rule => rule.Name));
        while (pending.TryDequeue(out var rule))
        {
            queued.Remove(rule.Name);
            var changed = false;
            if (!_nullable[rule.Name] && NullableOf(rule.Body))
            {
                (_nullable[rule.Name], changed) = (true, true);
            }

            foreach (var token in FirstOf(rule.Body))
            {
                changed |= _first[rule.Name].Add(token);
            }

            foreach (var token in LastOf(rule.Body))
            {
                changed |= _last[rule.Name].Add(token);
            }

            foreach (var dependent in changed ? dependents[rule.Name] : [])
            {
                if (queued.Add(dependent.Name))
                {
                    pending.Enqueue(dependent);
                }
            }
        }
    }

    private bool NullableOf(Expr expr) => expr switch
    {
        Reference r when !_definitions[r.Name].Terminal => _nullable.GetValueOrDefault(r.Name),
        Alternatives a => a.Choices.Any(NullableOf),
        Sequence q => q.Items.All(NullableOf),
        Repetition r => r.Min == 0 || NullableOf(r.Inner),
        _ => _emptyToken?.Invoke(Key(expr)) ?? false, // a token: empty only if it may match nothing, like /(.*)/
    };

    private IReadOnlyCollection<TokenKey> FirstOf(Expr expr) => expr switch
    {
        Reference r when !_definitions[r.Name].Terminal => _first.GetValueOrDefault(r.Name) ?? [],
        Alternatives a => [.. a.Choices.SelectMany(FirstOf).Distinct()],
        Sequence q => FirstOfFrom(q.Items, 0),
        Repetition r => FirstOf(r.Inner),
        _ => [Key(expr)],
    };

    private IReadOnlyCollection<TokenKey> LastOf(Expr expr) => expr switch
    {
        Reference r when !_definitions[r.Name].Terminal => _last.GetValueOrDefault(r.Name) ?? [],
        Alternatives a => [.. a.Choices.SelectMany(LastOf).Distinct()],
        Sequence q => LastOfUpTo(q.Items, q.Items.Count - 1),
        Repetition r => LastOf(r.Inner),
        _ => [Key(expr)],
    };

    private List<TokenKey> FirstOfFrom(IReadOnlyList<Expr> items, int from)
    {
        var found = new HashSet<TokenKey>();
        for (var i = from; i < items.Count; i++)
        {
            found.UnionWith(FirstOf(items[i]));
            if (!NullableOf(items[i]))
            {
                break;
            }
        }

        return [.. found];
    }

    private List<TokenKey> LastOfUpTo(IReadOnlyList<Expr> items, int upTo)
    {
        var found = new HashSet<TokenKey>();
        for (var i = upTo; i >= 0; i--)
        {
            found.UnionWith(LastOf(items[i]));
            if (!NullableOf(items[i]))
            {
                break;
            }
        }

        return [.. found];
    }
}
