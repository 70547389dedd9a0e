using System;
using System.Collections.Generic;
using System.IO;
using Daemon.Interop;
using Daemon.Launching;
using Daemon.Logging;
using Daemon.PidFiles;
using Daemon.Processes;

namespace Daemon.Commands;

/// <summary>
/// Everything the commands learn from or do to the operating system, in one place: the narrow
/// seam through which tests drive every decision <see cref="DaemonBase"/> makes.
/// </summary>
internal sealed class DaemonSystem
{
    public DaemonSystem(IPidFileStore pidFiles, IProcessTable processes, IDaemonLauncher launcher, TextWriter output, TextWriter error, bool isRoot, string? home, TimeProvider? clock = null)
    {
        Clock = clock ?? TimeProvider.System;
        PidFiles = pidFiles;
        Processes = processes;
        Launcher = launcher;
        Output = output;
        Error = error;
        IsRoot = isRoot;
        Home = home;
    }

    public IPidFileStore PidFiles { get; }

    public IProcessTable Processes { get; }

    public IDaemonLauncher Launcher { get; }

    public TextWriter Output { get; }

    public TextWriter Error { get; }

    public bool IsRoot { get; }

    public string? Home { get; }

    /// <summary>
    /// Makes the user and group databases usable (<c>--user</c>, <c>--group</c>): null when they
    /// are, otherwise why not, as one line. The real one loads Mono.Posix's native helper.
    /// </summary>
    public Func<string?> LoadUserDatabase { get; init; } = static () => null;

    /// <summary>The time now and the local time zone, for what status says of a running daemon.</summary>
    public TimeProvider Clock { get; }

    /// <summary>
    /// The Unix socket files a daemon listens on (read before <c>stop</c> signals it), and the
    /// removal of those nobody accepts on once it is gone; nothing for a test's system.
    /// </summary>
    public Func<int, IReadOnlyList<string>> SocketFilesOf { get; init; } = static _ => [];

    /// <summary>Removes a socket file nobody accepts on; see <see cref="SocketFilesOf"/>.</summary>
    public Func<string, bool> RemoveStaleSocketFile { get; init; } = static _ => false;

    /// <summary>
    /// Until the result is disposed, SIGTERM runs the action given (which says why on
    /// <see cref="Error"/>) and ends this process with exit 0 rather than killing it; nothing for a
    /// test's system.
    /// </summary>
    public Func<Action, IDisposable?> ExitCleanlyOnSigterm { get; init; } = static _ => null;

    /// <summary>The real system: this process's streams, pid files, processes and launcher.</summary>
    public static DaemonSystem CreateReal()
    {
        bool linux = OperatingSystem.IsLinux();
        bool isRoot = linux && Posix.GetEffectiveUid() == 0;
        string? home = Environment.GetEnvironmentVariable("HOME");
        // A relative HOME names a different folder for the daemon (in "/") than for the commands.
        // Root's default files do not depend on it: only another user's look-up loads the helper.
        if ((string.IsNullOrEmpty(home) || !Path.IsPathRooted(home)) && linux && !isRoot && NativeLibraries.EnsureHelper() is null)
        {
            home = Posix.GetHomeDirectory(Posix.GetEffectiveUid());
        }

        var processes = ProcessTable.Instance;
        var pidFiles = PidFileStore.Instance;
        return new DaemonSystem(pidFiles, processes, new ReexecLauncher(processes, pidFiles), CommandStream(Posix.StandardOutput), CommandStream(Posix.StandardError), isRoot, home)
        {
            LoadUserDatabase = NativeLibraries.EnsureHelper,
            SocketFilesOf = Handover.SocketFiles.ListenedOnBy,
            RemoveStaleSocketFile = Handover.SocketFiles.RemoveIfStale,
            ExitCleanlyOnSigterm = ExitOnSigterm,
        };
    }

    private static IDisposable? ExitOnSigterm(Action before) => OperatingSystem.IsWindows()
        ? null
        : System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            before();
            Environment.Exit(ExitCodes.Success);
        });

    /// <summary>Makes the copies of 1 and 2 now: the daemon is about to point them at its log.</summary>
    public void KeepCallerStreams()
    {
        (Output as CallerStream)?.Pin();
        (Error as CallerStream)?.Pin();
    }

    /// <summary>Closes the copies of 1 and 2 that the commands wrote through, if any were made.</summary>
    public void Release()
    {
        (Output as CallerStream)?.Dispose();
        (Error as CallerStream)?.Dispose();
    }

    // Not System.Console: its first use starts a thread, a cost every start, stop and status would pay.
    private static TextWriter CommandStream(int fd) => OperatingSystem.IsLinux()
        ? new CallerStream(fd)
        : fd == Posix.StandardOutput ? Console.Out : Console.Error;
}
