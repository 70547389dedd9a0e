using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Daemon;

/// <summary>
/// The command-line options a daemon understands: the framework's and those a subclass adds in
/// <see cref="DaemonBase.ConfigureOptions"/>. Options take the form <c>--name VALUE</c> or
/// <c>--name=VALUE</c> and may stand before or after the command.
/// </summary>
public sealed class DaemonOptionSet
{
    private readonly List<Entry> _entries = new();

    internal DaemonOptionSet()
    {
    }

    /// <summary>Adds an option that takes a value.</summary>
    /// <param name="name">The option, with its leading dashes, such as <c>--port</c>.</param>
    /// <param name="valueName">The value's name in the help text, such as <c>N</c>.</param>
    /// <param name="description">One line for <c>--help</c>.</param>
    /// <param name="apply">Receives the value; throws <see cref="FormatException"/> or
    /// <see cref="ArgumentException"/> (or returns an error through <see cref="DaemonException"/>)
    /// when it is invalid, which becomes a usage error. <see cref="OptionValues"/> has the
    /// common parsers.</param>
    /// <param name="currentValue">The value in effect, which <c>--help</c> shows as the default
    /// (read when help is shown, so a value preset in code is the one shown); null for none.</param>
    public void Add(string name, string valueName, string description, Action<string> apply, Func<string?>? currentValue = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(valueName);
        ArgumentNullException.ThrowIfNull(apply);
        Register(new Entry(name, valueName, description, apply, null, currentValue));
    }

    /// <summary>Adds an option that takes no value.</summary>
    /// <param name="name">The option, with its leading dashes, such as <c>--verbose</c>.</param>
    /// <param name="description">One line for <c>--help</c>.</param>
    /// <param name="apply">Called when the option is given.</param>
    public void AddFlag(string name, string description, Action apply)
    {
        ArgumentNullException.ThrowIfNull(apply);
        Register(new Entry(name, null, description, null, apply, null));
    }

    internal int FrameworkCount { get; set; }

    internal bool TryFind(string name, out Entry entry)
    {
        foreach (Entry candidate in _entries)
        {
            if (candidate.Name == name)
            {
                entry = candidate;
                return true;
            }
        }

        entry = default;
        return false;
    }

    internal void AppendHelp(StringBuilder help, int from, int count)
    {
        for (int i = from; i < from + count && i < _entries.Count; i++)
        {
            Entry e = _entries[i];
            string left = e.ValueName is null ? e.Name : $"{e.Name} {e.ValueName}";
            string shown = e.CurrentValue?.Invoke() is { } value ? $" (default: {value})" : "";
            help.Append(CultureInfo.InvariantCulture, $"  {left,-24} {e.Description}{shown}\n");
        }
    }

    internal int Count => _entries.Count;

    private void Register(Entry entry)
    {
        if (!entry.Name.StartsWith("--", StringComparison.Ordinal) || entry.Name.Length < 3 || entry.Name.Contains('='))
        {
            throw new ArgumentException($"option names look like --name: '{entry.Name}'", nameof(entry));
        }

        if (TryFind(entry.Name, out _))
        {
            throw new ArgumentException($"option {entry.Name} is already defined", nameof(entry));
        }

        _entries.Add(entry);
    }

    internal readonly record struct Entry(string Name, string? ValueName, string Description, Action<string>? ApplyValue, Action? ApplyFlag, Func<string?>? CurrentValue);
}
