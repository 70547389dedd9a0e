using System;
using System.Collections.Generic;

namespace Daemon.Launching;

/// <summary>What <c>start</c> learned from the daemon it launched.</summary>
internal enum LaunchOutcome
{
    /// <summary>The daemon is up: pid file locked, startup hook returned.</summary>
    Ready,

    /// <summary>Another daemon already held the pid file.</summary>
    AlreadyRunning,

    /// <summary>The daemon failed before it was ready and is gone.</summary>
    Failed,

    /// <summary>
    /// A restart's new daemon took over, then was not ready in time: it waits for the previous
    /// generation to exit. It is the service now, and was left running.
    /// </summary>
    TookOver,
}

/// <summary>
/// The result of a launch: its outcome, the pid concerned, the error line on failure, whether a
/// restart's new daemon waited for the previous generation to exit before it was ready, and
/// whether it had committed the takeover (the previous one stops) when it failed.
/// </summary>
internal readonly record struct LaunchResult(LaunchOutcome Outcome, int Pid, string? Error, bool AfterPredecessor = false, bool AfterCommit = false)
{
    public static LaunchResult Fail(string error) => new(LaunchOutcome.Failed, 0, error);
}

/// <summary>
/// What a launch needs to know; <paramref name="StopTimeout"/> is how long a restart's previous
/// generation may take to stop, which its new daemon waits for before it is ready.
/// </summary>
internal sealed record LaunchRequest(string PidFile, string LogFile, TimeSpan ReadyTimeout, IReadOnlyCollection<int> KeepDescriptors, bool TakeOver = false, TimeSpan StopTimeout = default)
{
    /// <summary>
    /// Null: a daemon started in the background (<c>start</c>). Otherwise a restart's next generation
    /// of a daemon systemd supervises, started in the foreground in the service (see
    /// <see cref="StageKind.Supervised"/>), with the service's watchdog interval (0: none).
    /// </summary>
    public long? SupervisedWatchdogUsec { get; init; }
}
