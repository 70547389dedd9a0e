using System;
using System.Globalization;
using Daemon.Interop;

namespace Daemon.Launching;

/// <summary>Which copy of the program this process is.</summary>
internal enum StageKind
{
    /// <summary>Started by a person or a service manager: a command to carry out.</summary>
    Command,

    /// <summary>The middle copy: calls setsid(), starts the daemon, exits.</summary>
    Detach,

    /// <summary>The final copy: the daemon itself.</summary>
    Daemon,
}

/// <summary>
/// The marker that tells a re-executed copy which stage it is and where its readiness pipe is.
/// Read once and removed from the environment at once, so a program the daemon starts is never
/// mistaken for a stage (go-daemon shares one marker variable with its children and is).
/// </summary>
internal readonly record struct Stage(StageKind Kind, int ReadyFd)
{
    public const string KindVariable = "DAEMON_NET_STAGE";
    public const string ReadyFdVariable = "DAEMON_NET_READY_FD";

    public static Stage Command { get; } = new(StageKind.Command, -1);

    /// <summary>Reads and removes the marker. A malformed or half marker is no stage at all.</summary>
    public static Stage TakeFromEnvironment()
    {
        string? kind = Environment.GetEnvironmentVariable(KindVariable);
        string? fd = Environment.GetEnvironmentVariable(ReadyFdVariable);
        if (kind is null && fd is null)
        {
            return Command;
        }

        Forget(KindVariable);
        Forget(ReadyFdVariable);

        StageKind parsed = kind switch
        {
            "detach" => StageKind.Detach,
            "daemon" => StageKind.Daemon,
            _ => StageKind.Command,
        };
        if (parsed == StageKind.Command
            || !int.TryParse(fd, NumberStyles.None, CultureInfo.InvariantCulture, out int readyFd)
            || readyFd < 3
            || !Posix.IsOpen(readyFd))
        {
            return Command;
        }

        return new Stage(parsed, readyFd);
    }

    public static string Name(StageKind kind) => kind == StageKind.Detach ? "detach" : "daemon";

    private static void Forget(string name)
    {
        // Both copies of the environment: .NET's own, used by Process.Start, and libc's.
        Environment.SetEnvironmentVariable(name, null);
        if (OperatingSystem.IsLinux())
        {
            Posix.UnsetEnvironment(name);
        }
    }
}
