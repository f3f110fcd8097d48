namespace Appliance.Prompting;

/// <summary>One message of a conversation, with its role (system, user or assistant) and text.</summary>
public sealed record ChatMessage(string Role, string Content);
