namespace Appliance.Prompting.Jinja;

/// <summary>A chat template could not be parsed (at model load) or rendered.</summary>
public class ChatTemplateException(string message) : Exception(message);

/// <summary>The template itself refused the conversation (raise_exception): the caller's input is at fault.</summary>
public sealed class ChatTemplateRejectedException(string message) : ChatTemplateException(message);
