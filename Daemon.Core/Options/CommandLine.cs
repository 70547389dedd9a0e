using System;
using System.Globalization;
using System.IO;

namespace Daemon.Options;

/// <summary>The commands a daemon program answers.</summary>
internal enum Command
{
    Help,
    Start,
    Stop,
    Restart,
    Status,
    Reload,
    Run,
}

/// <summary>A command line that cannot be understood: usage error, exit 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>Parses argv into a command and options; knows the framework's own options.</summary>
internal static class CommandLine
{
    /// <summary>Adds the framework's options, bound to <paramref name="options"/>.</summary>
    public static void AddFrameworkOptions(DaemonOptionSet set, DaemonOptions options, DaemonPaths paths)
    {
        set.Add("--pid-file", "PATH", $"pid file (default: {paths.DefaultPidFile})", v => options.PidFile = FullPath(v));
        set.Add("--log-file", "PATH", $"log file of the daemon (default: {paths.DefaultLogFile})", v => options.LogFile = FullPath(v));
        set.Add("--stop-timeout", "SECONDS", "how long stop waits after SIGTERM (default: 10)", v => options.StopTimeout = Seconds(v));
        set.AddFlag("--force", "stop: send SIGKILL when the stop timeout passes", () => options.Force = true);
        set.Add("--ready-timeout", "SECONDS", "how long start waits for readiness (default: 30)", v => options.ReadyTimeout = Seconds(v));
        set.Add("--user", "NAME", "run as this user after the startup hook (root only)", v => options.User = NonEmpty(v));
        set.Add("--group", "NAME", "run as this group (default: the user's primary group)", v => options.Group = NonEmpty(v));
        set.Add("--umask", "OCTAL", "file mode creation mask of the daemon (default: 022)", v => options.Umask = Octal(v));
        set.AddFlag("--help", "show this help and exit", () => { });
        set.FrameworkCount = set.Count;
    }

    /// <summary>
    /// Parses <paramref name="args"/>: exactly one command, and options before or after it.
    /// Applies each option through <paramref name="set"/>.
    /// </summary>
    /// <exception cref="UsageException">An unknown command or option, a missing or invalid value.</exception>
    public static Command Parse(string[] args, DaemonOptionSet set)
    {
        Command? command = null;
        bool help = false;
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i] ?? "";
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg == "--")
            {
                if (command is not null)
                {
                    throw new UsageException($"unexpected argument '{Printable(arg)}' after command '{command.Value.ToString().ToLowerInvariant()}'");
                }

                command = ParseCommand(arg);
                continue;
            }

            int eq = arg.IndexOf('=', StringComparison.Ordinal);
            string name = eq < 0 ? arg : arg[..eq];
            if (!set.TryFind(name, out DaemonOptionSet.Entry entry))
            {
                throw new UsageException($"unknown option '{Printable(name)}'");
            }

            if (name == "--help")
            {
                help = true;
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
            return Command.Help;
        }

        return command ?? throw new UsageException("no command given");
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
            throw new UsageException($"invalid value '{Printable(value)}' for {name}: {e.Message}");
        }
    }

    private static Command ParseCommand(string word) => word switch
    {
        "start" => Command.Start,
        "stop" => Command.Stop,
        "restart" => Command.Restart,
        "status" => Command.Status,
        "reload" => Command.Reload,
        "run" => Command.Run,
        "help" => Command.Help,
        _ => throw new UsageException($"unknown command '{Printable(word)}'"),
    };

    private static string FullPath(string value)
    {
        if (value.Length == 0 || value.Contains('\0', StringComparison.Ordinal))
        {
            throw new FormatException("not a path");
        }

        // Resolved now, before the daemon changes its working directory to "/".
        return Path.GetFullPath(value);
    }

    private static TimeSpan Seconds(string value)
    {
        if (!double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double seconds)
            || seconds <= 0 || seconds > 24 * 3600)
        {
            throw new FormatException("expected a number of seconds above 0 and at most 86400");
        }

        return TimeSpan.FromSeconds(seconds);
    }

    private static int Octal(string value)
    {
        if (value.Length is 0 or > 4 || value.AsSpan().IndexOfAnyExceptInRange('0', '7') >= 0)
        {
            throw new FormatException("expected an octal mask such as 022");
        }

        return Convert.ToInt32(value, 8);
    }

    private static string NonEmpty(string value) =>
        value.Length == 0 || value.Contains('\0', StringComparison.Ordinal) ? throw new FormatException("empty") : value;

    /// <summary>Keeps control characters from a hostile argument out of the terminal.</summary>
    internal static string Printable(string text)
    {
        var chars = text.Length > 64 ? text[..64].ToCharArray() : text.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (char.IsControl(chars[i]))
            {
                chars[i] = '?';
            }
        }

        return new string(chars) + (text.Length > 64 ? "..." : "");
    }
}
