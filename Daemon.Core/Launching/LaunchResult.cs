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
}

/// <summary>The result of a launch: its outcome, the pid concerned, and the error line on failure.</summary>
internal readonly record struct LaunchResult(LaunchOutcome Outcome, int Pid, string? Error)
{
    public static LaunchResult Fail(string error) => new(LaunchOutcome.Failed, 0, error);
}

/// <summary>What a launch needs to know.</summary>
internal sealed record LaunchRequest(string PidFile, string LogFile, TimeSpan ReadyTimeout, IReadOnlyCollection<int> KeepDescriptors, bool TakeOver = false);
