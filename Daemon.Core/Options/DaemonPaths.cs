using System;
using System.IO;

namespace Daemon.Options;

/// <summary>
/// Where a daemon's files go by default, derived from its name and who runs it, so that
/// <c>start</c> works with no options for root and for any other user.
/// </summary>
internal sealed class DaemonPaths
{
    public DaemonPaths(string name, bool isRoot, string? runtimeDirectory, string? stateHome, string? home)
    {
        runtimeDirectory = Absolute(runtimeDirectory);
        stateHome = Absolute(stateHome);
        home = Absolute(home);
        if (isRoot)
        {
            DefaultPidFile = $"/run/{name}.pid";
            DefaultLogFile = $"/var/log/{name}.log";
            return;
        }

        string state = Path.Combine(
            stateHome ?? Path.Combine(home ?? "/", ".local", "state"),
            name);
        DefaultPidFile = runtimeDirectory is not null
            ? Path.Combine(runtimeDirectory, $"{name}.pid")
            : Path.Combine(state, $"{name}.pid");
        DefaultLogFile = Path.Combine(state, $"{name}.log");
        OwnFolder = state;
    }

    public string DefaultPidFile { get; }

    public string DefaultLogFile { get; }

    /// <summary>The per-user folder the defaults live in, created (mode 0700) when a default is used.</summary>
    public string? OwnFolder { get; }

    public static DaemonPaths ForCurrentUser(string name, bool isRoot, string? home) => new(
        name,
        isRoot,
        Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR"),
        Environment.GetEnvironmentVariable("XDG_STATE_HOME"),
        home);

    /// <summary>
    /// The value when it is an absolute path, otherwise null: the XDG base directory spec says to
    /// ignore relative values, and a relative one would mean one file for the daemon (after it
    /// changed to "/") and another for the commands (in the caller's folder).
    /// </summary>
    private static string? Absolute(string? path) => !string.IsNullOrEmpty(path) && Path.IsPathRooted(path) ? path : null;
}
