namespace Daemon.Launching;

/// <summary>
/// What the launcher, the detach stage and the daemon agree on, in one place. The native detach
/// stage (<c>build/native/detach_stage.c</c>) keeps a copy in C, and a test fails when they differ.
/// </summary>
/// <remarks>
/// The layout of a stage's descriptors: 0-2 on /dev/null (the detach stage points them there; the
/// daemon then puts its log on 1 and 2), the readiness pipe's write end at the number the marker
/// names (not close-on-exec until the daemon runs; the daemon marks it so), the descriptors
/// <see cref="DaemonOptions.KeepDescriptors"/> names, and nothing else the launcher inherited.
/// </remarks>
internal static class StageProtocol
{
    /// <summary>The marker variable naming the stage: <see cref="DetachStage"/> or <see cref="DaemonStage"/>.</summary>
    public const string KindVariable = "DAEMON_NET_STAGE";

    /// <summary>The marker variable naming the readiness pipe's write end, as "FD:INODE".</summary>
    public const string ReadyFdVariable = "DAEMON_NET_READY_FD";

    /// <summary>The middle copy: setsid(), standard streams to /dev/null, start the daemon, exit.</summary>
    public const string DetachStage = "detach";

    /// <summary>The final copy: the daemon.</summary>
    public const string DaemonStage = "daemon";

    /// <summary>A restart's next generation under systemd, in the foreground like <c>run</c>.</summary>
    public const string SupervisedStage = "supervised";

    /// <summary>The middle copy for <see cref="SupervisedStage"/>: starts it and exits, keeping session and streams.</summary>
    public const string SupervisedDetachStage = "supervised-detach";

    /// <summary>"PID n": the daemon's pid, sent by the detach stage as soon as it started it, and by the daemon.</summary>
    public const string Pid = "PID";

    /// <summary>"READY n": pid file locked and written, startup hook returned.</summary>
    public const string Ready = "READY";

    /// <summary>"RUNNING n": another daemon, ready or starting, holds the pid file.</summary>
    public const string Running = "RUNNING";

    /// <summary>"PROGRESS text": a step reached; the launcher reads it only to prove it still waits.</summary>
    public const string Progress = "PROGRESS";

    /// <summary>
    /// "PROGRESS taking the pid file over": a restart's new daemon is about to become the one the
    /// pid file names and to take the running one's place. The launcher then waits past its ready
    /// timeout (<see cref="TakeOverGrace"/> more at most): killing it from here on would leave no
    /// daemon serving, since the old one stops accepting once the new one commits.
    /// </summary>
    public const string TakingOver = "taking the pid file over";

    /// <summary>
    /// "PROGRESS waiting for the previous generation to exit": a restart's new daemon committed the
    /// takeover and waits for the old one to stop before its main loop begins. The launcher then
    /// waits the stop timeout, <see cref="PredecessorExitGrace"/> and a ready timeout more, and
    /// never kills it: it is the service now.
    /// </summary>
    public const string AwaitingPredecessor = "waiting for the previous generation to exit";

    /// <summary>
    /// "PROGRESS committed": a restart's new daemon has taken over; the old one stops. The launcher
    /// never kills it from here on, and waits as for <see cref="AwaitingPredecessor"/>.
    /// </summary>
    public const string Committed = "committed";

    /// <summary>
    /// What a restart's previous generation gets past its stop timeout to exit, its runtime's last
    /// lines included, before its successor says it is late (or, with <c>--force</c>, kills it).
    /// </summary>
    public static readonly System.TimeSpan PredecessorExitGrace = System.TimeSpan.FromSeconds(2);

    /// <summary>How long past the ready timeout a launcher waits once the new daemon is taking over.</summary>
    public static readonly System.TimeSpan TakeOverGrace = System.TimeSpan.FromSeconds(30);

    /// <summary>"ERROR text": why the stage or the daemon could not start, as one line.</summary>
    public const string Error = "ERROR";

    /// <summary>
    /// Not a message: what <see cref="ReadinessReader.Next"/> returns when the deadline passed
    /// before one came. No stage sends it, and a line that says it is read as a message of an
    /// unknown kind (a daemon cannot fake a timeout of its launcher).
    /// </summary>
    public const string Timeout = "\0timeout";

    /// <summary>The exit code of a stage that failed (its reason went up the pipe first).</summary>
    public const int StageFailed = ExitCodes.Failure;

    /// <summary>
    /// The signals whose inherited disposition each stage resets to the default before it starts
    /// the next, and that the daemon unblocks and un-ignores: an inherited SIG_IGN wins over a
    /// .NET handler, which then never runs.
    /// </summary>
    public static readonly int[] ResetSignals =
    {
        Interop.Signal.SIGHUP,  // nohup and "cmd &" in a script ignore it; reload must reach the daemon.
        Interop.Signal.SIGINT,  // ignored for background jobs of a non-interactive shell; a foreground run stops on it.
        Interop.Signal.SIGQUIT, // ignored like SIGINT for background jobs; a stop signal of the daemon.
        Interop.Signal.SIGUSR1, // free for the daemon's own use, which an inherited SIG_IGN would silently defeat.
        Interop.Signal.SIGUSR2, // likewise.
        Interop.Signal.SIGTERM, // a caller may ignore it (trap '' TERM); stop must still reach the daemon.
    };
}
