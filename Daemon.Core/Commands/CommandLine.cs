using System;
using Daemon.Files;
using Daemon.Options;

namespace Daemon.Commands;

/// <summary>Parses argv into a command and options; knows the framework's own options.</summary>
internal static class CommandLine
{
    /// <summary>
    /// Adds the framework's options, bound to <paramref name="owner"/>'s options. Each default is
    /// stated once, in <see cref="DaemonOptions"/> (or derived from the name, for the files), and
    /// <c>--help</c> reads it from the instance, so a value a subclass presets is the one shown.
    /// </summary>
    public static void AddFrameworkOptions(DaemonOptionSet set, DaemonBase owner)
    {
        DaemonOptions options = owner.Options;
        set.Add("--pid-file", "PATH", "pid file", v => options.PidFile = OptionValues.FullPath(v), () => owner.PidFilePath);
        set.Add("--log-file", "PATH", "log file of the daemon", v => options.LogFile = OptionValues.FullPath(v), () => owner.LogFilePath);
        set.Add("--stop-timeout", "SECONDS", "how long stop waits after SIGTERM", v => options.StopTimeout = OptionValues.Seconds(v), () => OptionValues.ShowSeconds(options.StopTimeout));
        set.AddFlag("--force", "stop: send SIGKILL when the stop timeout passes", () => options.Force = true);
        set.Add("--ready-timeout", "SECONDS", "how long start waits for readiness", v => options.ReadyTimeout = OptionValues.Seconds(v), () => OptionValues.ShowSeconds(options.ReadyTimeout));
        set.Add("--user", "NAME", "run as this user (name or uid) after the startup hook (root only)", v => options.User = OptionValues.NonEmpty(v), () => options.User);
        set.Add("--group", "NAME", "run as this group (name or gid); default: the user's primary group", v => options.Group = OptionValues.NonEmpty(v), () => options.Group);
        set.Add("--umask", "OCTAL", "file mode creation mask of the daemon", v => options.Umask = OptionValues.Octal(v), () => OptionValues.ShowOctal(options.Umask));
        set.AddFlag("--help", "show this help and exit (also -h; after a command, that command's help)", () => { });
        set.AddFlag("--version", "show the program's name and version and exit", () => { });
        set.FrameworkCount = set.Count;
    }

    /// <summary>
    /// Parses <paramref name="args"/>: exactly one command, and options before or after it.
    /// Applies each option through <paramref name="set"/>.
    /// </summary>
    /// <exception cref="UsageException">An unknown command or option, a missing or invalid value.</exception>
    public static Command Parse(string[] args, DaemonOptionSet set, out Command? helpTopic) => Parse(args, set, out helpTopic, out _);

    /// <summary>
    /// <see cref="Parse(string[], DaemonOptionSet, out Command?)"/>, also telling where in
    /// <paramref name="args"/> the command word was (-1 when there was none).
    /// </summary>
    /// <exception cref="UsageException">An unknown command or option, a missing or invalid value.</exception>
    public static Command Parse(string[] args, DaemonOptionSet set, out Command? helpTopic, out int commandAt)
    {
        Command? command = null;
        commandAt = -1;
        bool help = false;
        bool version = false;
        helpTopic = null;
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i] ?? "";
            if (arg == "-h")
            {
                help = true;
                continue;
            }

            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg == "--")
            {
                if (command is not null)
                {
                    throw new UsageException($"unexpected argument '{PathText.Printable(arg)}' after command '{CommandTable.Of(command.Value).Word}'");
                }

                command = ParseCommand(arg);
                commandAt = i;
                continue;
            }

            int eq = arg.IndexOf('=', StringComparison.Ordinal);
            string name = eq < 0 ? arg : arg[..eq];
            if (!set.TryFind(name, out DaemonOptionSet.Entry entry))
            {
                throw new UsageException($"unknown option '{PathText.Printable(name)}'");
            }

            if (name == "--help")
            {
                help = true;
                continue;
            }

            if (name == "--version")
            {
                version = true;
                continue;
            }

            if (entry.ApplyFlag is not null)
            {
                if (eq >= 0)
                {
                    throw new UsageException($"option {name} takes no value");
                }

                entry.ApplyFlag();
                continue;
            }

            string value;
            if (eq >= 0)
            {
                value = arg[(eq + 1)..];
            }
            else if (i + 1 < args.Length)
            {
                value = args[++i] ?? "";
            }
            else
            {
                throw new UsageException($"option {name} needs a value ({entry.ValueName})");
            }

            Apply(entry, name, value);
        }

        if (help)
        {
            helpTopic = command is Command.Help ? null : command;
            return Command.Help;
        }

        if (version)
        {
            return Command.Version;
        }

        return command ?? throw new UsageException("no command given", showCommands: true);
    }

    private static void Apply(DaemonOptionSet.Entry entry, string name, string value)
    {
        try
        {
            entry.ApplyValue!(value);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Whatever a subclass's parser throws, the value is what was wrong.
            throw new UsageException($"invalid value '{PathText.Printable(value)}' for {name}: {e.Message}");
        }
    }

    private static Command ParseCommand(string word) =>
        CommandTable.Find(word)?.Command ?? throw new UsageException(
            CommandTable.Nearest(word) is { } near ? $"unknown command '{PathText.Printable(word)}' (did you mean '{near}'?)" : $"unknown command '{PathText.Printable(word)}'",
            showCommands: true);
}
