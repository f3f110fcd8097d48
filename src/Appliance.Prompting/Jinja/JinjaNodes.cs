namespace Appliance.Prompting.Jinja;

/// <summary>Template statements.</summary>
internal abstract record Node;

internal sealed record TextNode(string Text) : Node;

internal sealed record OutputNode(Expr Value) : Node;

internal sealed record IfNode(IReadOnlyList<(Expr Condition, IReadOnlyList<Node> Body)> Branches, IReadOnlyList<Node>? Else) : Node;

internal sealed record ForNode(IReadOnlyList<string> Targets, Expr Iterable, Expr? Filter, IReadOnlyList<Node> Body, IReadOnlyList<Node>? Else) : Node;

internal sealed record SetNode(string Name, string? Attribute, Expr Value) : Node;

internal sealed record SetBlockNode(string Name, IReadOnlyList<Node> Body) : Node;

/// <summary>A block rendered as it is: TRL's {% generation %} marks the assistant's part for training only.</summary>
internal sealed record BlockNode(IReadOnlyList<Node> Body) : Node;

/// <summary>{% break %} or {% continue %} (Jinja's loopcontrols extension, which transformers switches on).</summary>
internal sealed record LoopControlNode(bool Break) : Node;

internal sealed record MacroNode(string Name, IReadOnlyList<(string Name, Expr? Default)> Parameters, IReadOnlyList<Node> Body) : Node;

/// <summary>Template expressions.</summary>
internal abstract record Expr;

internal sealed record LiteralExpr(object? Value) : Expr;

internal sealed record NameExpr(string Name) : Expr;

internal sealed record AttributeExpr(Expr Target, string Name) : Expr;

internal sealed record ItemExpr(Expr Target, Expr Key) : Expr;

internal sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step) : Expr;

internal sealed record CallExpr(Expr Target, IReadOnlyList<Expr> Arguments, IReadOnlyList<(string Name, Expr Value)> Named) : Expr;

internal sealed record FilterExpr(Expr Target, string Name, IReadOnlyList<Expr> Arguments, IReadOnlyList<(string Name, Expr Value)> Named) : Expr;

internal sealed record TestExpr(Expr Target, string Name, IReadOnlyList<Expr> Arguments, bool Negated) : Expr;

internal sealed record UnaryExpr(string Operator, Expr Operand) : Expr;

internal sealed record BinaryExpr(string Operator, Expr Left, Expr Right) : Expr;

internal sealed record ConditionalExpr(Expr Condition, Expr Then, Expr? Else) : Expr;

internal sealed record ListExpr(IReadOnlyList<Expr> Items) : Expr;

internal sealed record DictExpr(IReadOnlyList<(Expr Key, Expr Value)> Items) : Expr;
