using Appliance.Prompting.Jinja;

namespace Appliance.Prompting;

/// <summary>
/// Fallback chat formats for model folders that ship no template of their own, chosen by name in configuration:
/// chatml, llama3, llama2 (also Mistral's [INST] format) and phi3. Written as Jinja and rendered by the same
/// interpreter as the models' own templates.
/// </summary>
public static class BuiltInChatTemplates
{
    public static IReadOnlyList<string> Names { get; } = ["chatml", "llama3", "llama2", "phi3"];

    public static IChatTemplate Create(string name, string? bosToken = null, string? eosToken = null) => name switch
    {
        "chatml" => new ChatMlTemplate { BosToken = bosToken, EosToken = eosToken },
        "llama3" => new HuggingFaceChatTemplate(Llama3, bosToken ?? "<|begin_of_text|>", eosToken),
        "llama2" => new HuggingFaceChatTemplate(Llama2, bosToken ?? "<s>", eosToken ?? "</s>"),
        "phi3" => new HuggingFaceChatTemplate(Phi3, bosToken, eosToken ?? "<|endoftext|>"),
        _ => throw new ChatTemplateException($"unknown built-in chat template '{name}' (known: {string.Join(", ", Names)})"),
    };

    // Llama 3: header tokens around each role, <|eot_id|> after each turn.
    private const string Llama3 =
        "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message.role }}<|end_header_id|>\n\n{{ message.content | trim }}<|eot_id|>{% endfor %}" +
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";

    // Llama 2 / Mistral: [INST] ... [/INST] around user turns, a system message folded into the first user turn.
    private const string Llama2 =
        "{% if messages and messages[0].role == 'system' %}{% set system = messages[0].content %}{% set turns = messages[1:] %}" +
        "{% else %}{% set system = none %}{% set turns = messages %}{% endif %}" +
        "{% for message in turns %}" +
        "{% if message.role == 'user' %}{{ bos_token }}[INST] {% if loop.first and system %}<<SYS>>\n{{ system }}\n<</SYS>>\n\n{% endif %}{{ message.content | trim }} [/INST]" +
        "{% elif message.role == 'assistant' %} {{ message.content | trim }} {{ eos_token }}" +
        "{% else %}{{ raise_exception('Only user and assistant turns may follow the system message') }}{% endif %}" +
        "{% endfor %}";

    // Phi-3: <|role|> lines, <|end|> after each turn.
    private const string Phi3 =
        "{% for message in messages %}<|{{ message.role }}|>\n{{ message.content }}<|end|>\n{% endfor %}" +
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}";
}
