using System.Security.Claims;

namespace Appliance.WebConsole;

/// <summary>A console page and the roles that open it (any of them; none: every signed-in person).</summary>
public sealed record ConsolePage(string Path, string Title, params string[] Roles);

/// <summary>Which console pages a person sees in the navigation: those their roles open.</summary>
public sealed class ConsoleNavigation(IReadOnlyList<ConsolePage> pages)
{
    public IReadOnlyList<ConsolePage> Pages { get; } = pages;

    public IEnumerable<ConsolePage> PagesFor(ClaimsPrincipal user) => Pages.Where(p => p.Roles.Length == 0 || p.Roles.Any(user.IsInRole));
}

/// <summary>Whose usage a person may see: everything (null) for administrators, their own teams for a team lead.</summary>
public interface IUsageScope
{
    IReadOnlyList<string>? TeamsOf(ClaimsPrincipal user);
}
