using System.Net;

namespace Appliance.Host.WebConsole;

/// <summary>The frame of the console's few server-written pages (sign-in form, not allowed): the same bundled styles as the Blazor pages.</summary>
internal static class ConsoleHtml
{
    public static string Page(string title, string body) => $"""
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>{WebUtility.HtmlEncode(title)} · Appliance</title>
        <link rel="icon" href="data:,"><link rel="stylesheet" href="/_content/Radzen.Blazor/css/material-base.css">
        <link rel="stylesheet" href="/_content/Radzen.Blazor/css/material-wcag.css"><link rel="stylesheet" href="/_content/Appliance.Console/console.css"></head>
        <body><main id="main">{body}</main></body></html>
        """;
}
