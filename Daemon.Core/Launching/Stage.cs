using System;
using System.Globalization;
using Daemon.Interop;

namespace Daemon.Launching;

/// <summary>
/// The marker that tells a re-executed copy which stage it is and where its readiness pipe is.
/// Read once and removed from the environment at once, so a program the daemon starts is never
/// mistaken for a stage (go-daemon shares one marker variable with its children and is).
/// </summary>
internal readonly record struct Stage(StageKind Kind, int ReadyFd, bool TakeOver = false, bool Supervised = false)
{
    public static Stage Command { get; } = new(StageKind.Command, -1);

    /// <summary>Which copy of the program this process is (off Linux, always a command).</summary>
    public static Stage OfThisProcess() => OperatingSystem.IsLinux() ? TakeFromEnvironment() : Command;

    /// <summary>The readiness pipe to the launcher, for the daemon stage.</summary>
    public ReadinessWriter Launcher() => Kind is StageKind.Daemon or StageKind.Supervised ? new ReadinessWriter(ReadyFd) : throw new InvalidOperationException("only the daemon stage reports to the launcher");

    /// <summary>
    /// For a stage, sends <paramref name="reason"/> up the readiness pipe (the launcher must never
    /// be left waiting) and returns the usage exit code; for a command, null: the caller says it.
    /// </summary>
    public int? Refuse(string reason)
    {
        if (Kind == StageKind.Command)
        {
            return null;
        }

        using var ready = new ReadinessWriter(ReadyFd);
        _ = ready.Send(StageProtocol.Error, reason);
        return ExitCodes.Usage;
    }

    /// <summary>
    /// Reads and removes the marker. A malformed or half marker, or one whose descriptor is not our
    /// readiness pipe, is no stage at all.
    /// </summary>
    public static Stage TakeFromEnvironment()
    {
        string? kind = Environment.GetEnvironmentVariable(StageProtocol.KindVariable);
        string? fd = Environment.GetEnvironmentVariable(StageProtocol.ReadyFdVariable);
        bool takeOver = Environment.GetEnvironmentVariable(Handover.HandoverProtocol.Variable) == "1";
        if (kind is null && fd is null && !takeOver)
        {
            return Command;
        }

        Posix.UnsetEnvironment(StageProtocol.KindVariable);
        Posix.UnsetEnvironment(StageProtocol.ReadyFdVariable);
        Posix.UnsetEnvironment(Handover.HandoverProtocol.Variable);

        StageKind parsed = kind switch
        {
            StageProtocol.DetachStage or StageProtocol.SupervisedDetachStage => StageKind.Detach,
            StageProtocol.DaemonStage => StageKind.Daemon,
            StageProtocol.SupervisedStage => StageKind.Supervised,
            _ => StageKind.Command,
        };
        if (parsed == StageKind.Command || !TryParseReadyFd(fd, out int readyFd, out ulong inode) || !IsReadinessPipe(readyFd, inode))
        {
            // Whatever set these was not our launcher: a command, not a stage.
            return Command;
        }

        return new Stage(parsed, readyFd, takeOver, Supervised: kind == StageProtocol.SupervisedDetachStage);
    }

    /// <summary>The marker's value for the readiness pipe's write end: "FD:INODE".</summary>
    public static string FormatReadyFd(int fd)
    {
        if (Posix.Fstat(fd, out FileStatus status, out int errno) < 0)
        {
            throw DaemonException.FromErrno("cannot stat the readiness pipe", errno);
        }

        return $"{fd.ToString(CultureInfo.InvariantCulture)}:{status.Inode.ToString(CultureInfo.InvariantCulture)}";
    }

    private static bool TryParseReadyFd(string? value, out int fd, out ulong inode)
    {
        fd = -1;
        inode = 0;
        int colon = value?.IndexOf(':', StringComparison.Ordinal) ?? -1;
        return colon > 0
            && int.TryParse(value.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out fd)
            && ulong.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out inode)
            && fd > Posix.StandardError;
    }

    /// <summary>
    /// True when <paramref name="fd"/> is the write end of the very pipe the launcher made: a fifo,
    /// open write-only, with the inode the marker names. A marker copied into someone's environment
    /// points at nothing of the kind, and the command runs as the command it is.
    /// </summary>
    private static bool IsReadinessPipe(int fd, ulong inode) =>
        Posix.Fstat(fd, out FileStatus status, out _) == 0
        && status.Type == FileType.Fifo
        && status.Inode == inode
        && Posix.IsWriteOnly(fd);

    public static string Name(StageKind kind, bool supervised = false) => kind switch
    {
        StageKind.Detach => supervised ? StageProtocol.SupervisedDetachStage : StageProtocol.DetachStage,
        StageKind.Supervised => StageProtocol.SupervisedStage,
        _ => StageProtocol.DaemonStage,
    };
}
