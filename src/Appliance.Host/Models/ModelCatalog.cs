using System.Collections.Immutable;
using Appliance.Api.Models;

namespace Appliance.Host.Models;

/// <summary>The node's models and their states; entries are swapped atomically as models load.</summary>
public sealed class ModelCatalog : IModelCatalog, IDisposable
{
    private ImmutableArray<ModelEntry> _entries = [];
    private readonly List<IDisposable> _owned = [];

    public IReadOnlyList<ModelEntry> Entries => _entries;

    /// <summary>Whether the models declared at start have each been tried once (loaded or failed).</summary>
    public bool StartupComplete { get; private set; }

    public void MarkStartupComplete() => StartupComplete = true;

    public ModelEntry? Find(string name) =>
        _entries.FirstOrDefault(e => e.Id == name) ?? _entries.FirstOrDefault(e => e.Aliases.Contains(name));

    /// <summary>Adds or replaces the entry with the same id.</summary>
    public void Set(ModelEntry entry)
    {
        ImmutableInterlocked.Update(ref _entries, entries =>
        {
            var index = entries.IndexOf(entries.FirstOrDefault(e => e.Id == entry.Id)!);
            return index >= 0 ? entries.SetItem(index, entry) : entries.Add(entry);
        });
    }

    /// <summary>Drops the entry with this id (a model unloaded because the settings no longer declare it).</summary>
    public void Remove(string id) => ImmutableInterlocked.Update(ref _entries, entries => entries.RemoveAll(e => e.Id == id));

    /// <summary>Keeps something the catalog disposes at shutdown (engines and their runners).</summary>
    public void Own(IDisposable resource)
    {
        lock (_owned)
        {
            _owned.Add(resource);
        }
    }

    public void Dispose()
    {
        lock (_owned)
        {
            // Disposing an engine cancels its unfinished requests; this runs after the drain time.
            foreach (var resource in _owned)
            {
                resource.Dispose();
            }

            _owned.Clear();
        }
    }
}
