using System;
using System.Collections.Generic;
using System.Globalization;
using Daemon.Files;
using Daemon.Interop;
using Daemon.PidFiles;
using Daemon.Processes;

namespace Daemon.Launching;

/// <summary>Starts the daemon in the background and reports how it went: the seam behind <c>start</c>.</summary>
internal interface IDaemonLauncher
{
    LaunchResult Launch(LaunchRequest request);

    /// <summary>
    /// Asks the daemon <paramref name="holder"/> that holds <paramref name="pidFile"/>, on its control
    /// channel, whether it can hand over, waiting at most <paramref name="timeout"/>.
    /// </summary>
    Handover.HandoverProbe ProbeHandover(string pidFile, int holder, TimeSpan timeout);
}

/// <summary>
/// Daemonizes without fork(): the launcher re-executes the program as the detach stage, which
/// calls setsid() and re-executes it again as the daemon, then exits. The daemon reports back
/// through a pipe that only the stages hold, so the launcher's answer is the daemon's own.
/// </summary>
internal sealed class ReexecLauncher(IProcessTable processes, IPidFileStore pidFiles) : IDaemonLauncher
{
    private static readonly TimeSpan _exitGrace = TimeSpan.FromSeconds(5);

    public Handover.HandoverProbe ProbeHandover(string pidFile, int holder, TimeSpan timeout) => Handover.Predecessor.Probe(pidFile, holder, timeout);

    public LaunchResult Launch(LaunchRequest request)
    {
        // .NET opens everything close-on-exec; this pipe's write end must not be.
        if (Posix.Pipe(out int readEnd, out int writeEnd, out int errno) < 0)
        {
            throw DaemonException.FromErrno("cannot create the readiness pipe", errno);
        }

        _ = Posix.SetCloseOnExec(readEnd, true);
        using var reader = new ReadinessReader(readEnd);
        int detachStage;
        try
        {
            var keep = new List<int>(request.KeepDescriptors) { writeEnd };
            Descriptors.CloseOnExecAllBut(keep);
            detachStage = SelfExec.Start(StageKind.Detach, writeEnd, request.TakeOver, request.SupervisedWatchdogUsec);
        }
        finally
        {
            // Only the stages hold the write end now: when they are gone, the reader sees EOF.
            Posix.Close(writeEnd);
        }

        return AwaitReadiness(reader, request, detachStage);
    }

    /// <summary>Reads the stages' messages until the daemon is ready, failed or timed out.</summary>
    internal LaunchResult AwaitReadiness(ReadinessReader reader, LaunchRequest request, int detachStage)
    {
        long deadline = Environment.TickCount64 + (long)request.ReadyTimeout.TotalMilliseconds;
        IProcessHandle? daemon = null;
        int tookOver = 0;
        bool afterPredecessor = false;
        try
        {
            while (true)
            {
                var message = reader.Next(deadline);
                switch (message?.Kind)
                {
                    case null:
                        return LaunchResult.Fail($"the daemon exited before it was ready (see {PathText.Quote(request.LogFile)})") with { AfterCommit = tookOver != 0 };
                    case StageProtocol.Pid when daemon is null && TryParsePid(message.Value.Argument, out int pid):
                        daemon = processes.Open(pid);
                        break;
                    case StageProtocol.Ready when TryParsePid(message.Value.Argument, out int pid):
                        return new LaunchResult(LaunchOutcome.Ready, pid, null, AfterPredecessor: afterPredecessor);
                    case StageProtocol.Progress when message.Value.Argument == StageProtocol.TakingOver:
                        deadline = Math.Max(deadline, Environment.TickCount64 + (long)StageProtocol.TakeOverGrace.TotalMilliseconds);
                        break;
                    case StageProtocol.Progress when message.Value.Argument == StageProtocol.Committed:
                        // The old generation stops, for up to its stop timeout, and then this one activates.
                        tookOver = daemon?.Pid ?? -1;
                        deadline = Environment.TickCount64 + (long)AfterCommit(request).TotalMilliseconds;
                        break;
                    case StageProtocol.Progress when message.Value.Argument == StageProtocol.AwaitingPredecessor:
                        afterPredecessor = true;
                        break;
                    case StageProtocol.Timeout when tookOver != 0:
                        // Never killed from here on: it is the service, and the old one is stopping.
                        return new LaunchResult(LaunchOutcome.TookOver, Math.Max(tookOver, 0), $"not ready within {OptionValues.ShowSeconds(AfterCommit(request))} s of the handover (see {PathText.Quote(request.LogFile)})");
                    case StageProtocol.Running when TryParsePid(message.Value.Argument, out int pid):
                        _ = daemon?.WaitForExit(_exitGrace);
                        return new LaunchResult(LaunchOutcome.AlreadyRunning, pid, null);
                    case StageProtocol.Error:
                        // The daemon cleans up after itself; wait for it so that no process is left
                        // when start returns.
                        _ = daemon?.WaitForExit(_exitGrace);
                        return LaunchResult.Fail(message.Value.Argument) with { AfterCommit = tookOver != 0 };
                    case StageProtocol.Timeout:
                        return GiveUp(reader, daemon, detachStage, request);
                    default:
                        break;
                }
            }
        }
        finally
        {
            daemon?.Dispose();
        }
    }

    /// <summary>
    /// Kills what this launch started, whether or not the daemon said its pid yet. The detach stage
    /// is our child, not yet reaped, so its pid cannot be reused: first the stage itself, so it
    /// starts nothing more; then its process group, which setsid() made its own and in which it
    /// started the daemon. The readiness pipe's end of file then says that every holder is gone.
    /// </summary>
    private LaunchResult GiveUp(ReadinessReader reader, IProcessHandle? daemon, int detachStage, LaunchRequest request)
    {
        string seconds = OptionValues.ShowSeconds(request.ReadyTimeout);
        _ = Posix.Kill(detachStage, Signal.SIGKILL, out _);
        _ = Posix.Kill(-detachStage, Signal.SIGKILL, out _);
        _ = daemon?.Signal(Signal.SIGKILL);
        long deadline = Environment.TickCount64 + (long)_exitGrace.TotalMilliseconds;
        while (reader.Next(deadline) is { Kind: not StageProtocol.Timeout })
        {
            // A PID line written just before the kill: whoever wrote it is dead now too.
        }

        _ = daemon?.WaitForExit(_exitGrace);
        _ = pidFiles.TryRemoveStale(request.PidFile, out _);
        return LaunchResult.Fail($"the daemon was not ready within {seconds} s and was killed (see {PathText.Quote(request.LogFile)})");
    }

    /// <summary>How long a restart's new daemon may take once it committed: the old one stops and exits, then the new one activates.</summary>
    private static TimeSpan AfterCommit(LaunchRequest request) => request.StopTimeout + StageProtocol.PredecessorExitGrace + request.ReadyTimeout;

    private static bool TryParsePid(string text, out int pid) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out pid) && pid > 0;
}
