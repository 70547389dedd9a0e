using System;
using System.Collections.Generic;

namespace Daemon.Commands;

/// <summary>
/// The one table of commands that parsing, dispatch and <c>--help</c> all read, in the order
/// <c>--help</c> lists them.
/// </summary>
internal static class CommandTable
{
    public static IReadOnlyList<CommandInfo> All { get; } =
    [
        new(Command.Start, "start", "start the daemon in the background; wait until it is ready", d => d.Start()),
        new(Command.Stop, "stop", "stop the daemon (SIGTERM, then wait; --force: SIGKILL at the timeout)", d => d.Stop()),
        new(Command.Restart, "restart", "restart refusing no connection: a new daemon starts up, takes over the listeners, then the old one stops", d => d.Restart()),
        new(Command.Status, "status", "exit 0 running, 1 dead but pid file left, 3 not running, 4 unknown, 150 starting", d => d.Status()),
        new(Command.Reload, "reload", "ask the daemon to reopen its log and reload (SIGHUP); 7: not running", d => d.Reload()),
        new(Command.Run, "run", "run in the foreground (systemd Type=notify, containers)", d => d.RunInForeground()),
        new(Command.Help, "help", "show this help and exit", d => d.Help()),
    ];

    /// <summary>The usage line: <c>Usage: NAME {start|stop|...} [options]</c>.</summary>
    public static string UsageLine(string name)
    {
        var words = new List<string>();
        foreach (CommandInfo info in All)
        {
            if (info.Command != Command.Help)
            {
                words.Add(info.Word);
            }
        }

        return $"Usage: {name} {{{string.Join('|', words)}}} [options]";
    }

    /// <summary>A command one edit away from <paramref name="word"/> (a letter added, dropped, changed or two swapped), or null.</summary>
    public static string? Nearest(string word)
    {
        foreach (CommandInfo info in All)
        {
            if (OneEditApart(word, info.Word))
            {
                return info.Word;
            }
        }

        return null;
    }

    /// <summary>The command named <paramref name="word"/>, or null.</summary>
    public static CommandInfo? Find(string word)
    {
        foreach (CommandInfo info in All)
        {
            if (info.Word == word)
            {
                return info;
            }
        }

        return null;
    }

    public static CommandInfo Of(Command command)
    {
        foreach (CommandInfo info in All)
        {
            if (info.Command == command)
            {
                return info;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(command));
    }

    private static bool OneEditApart(string a, string b)
    {
        if (a == b || Math.Abs(a.Length - b.Length) > 1)
        {
            return false;
        }

        int i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i])
        {
            i++;
        }

        if (a.Length == b.Length)
        {
            // One letter changed, or two neighbours swapped ("strat" for "start").
            return a[(i + 1)..] == b[(i + 1)..]
                || (i + 1 < a.Length && a[i] == b[i + 1] && a[i + 1] == b[i] && a[(i + 2)..] == b[(i + 2)..]);
        }

        // One letter added or dropped.
        return a.Length > b.Length ? a[(i + 1)..] == b[i..] : a[i..] == b[(i + 1)..];
    }
}
