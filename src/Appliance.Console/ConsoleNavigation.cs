using System.Security.Claims;

namespace Appliance.WebConsole;

/// <summary>A console page and the role it needs (null: every signed-in person).</summary>
public sealed record ConsolePage(string Path, string Title, string? Role);

/// <summary>Which console pages a person sees in the navigation: those their roles open.</summary>
public sealed class ConsoleNavigation(IReadOnlyList<ConsolePage> pages)
{
    public IReadOnlyList<ConsolePage> Pages { get; } = pages;

    public IEnumerable<ConsolePage> PagesFor(ClaimsPrincipal user) => Pages.Where(p => p.Role is null || user.IsInRole(p.Role));
}
