using System;
using System.Collections.Generic;
using System.IO;
using Daemon.Commands;
using Daemon.Files;
using Daemon.Handover;
using Daemon.Interop;
using Daemon.Launching;
using Daemon.Logging;
using Daemon.PidFiles;
using Daemon.Processes;
using Daemon.Security;

namespace Daemon;

// The commands that act on a daemon from outside: start, stop, status, reload. The type's one
// <summary> is in DaemonBase.cs, so IntelliSense shows that one.
public abstract partial class DaemonBase
{
    private static readonly TimeSpan _killGrace = TimeSpan.FromSeconds(5);
    private int? _stoppedBefore;

    private int StartCore()
    {
        string pidFile = PidFilePath;
        PidFileState state = _system.PidFiles.Inspect(pidFile);
        if (state.NamesItsHolder)
        {
            return Say($"already running (pid {state.Holder})");
        }

        using (IProcessHandle? unlocked = OpenUnlockedDaemon(state, out _))
        {
            if (unlocked is not null)
            {
                // Started by another tool, which wrote the file: a second copy would fight it for its port.
                return Say($"already running (pid {unlocked.Pid}; pid file {PathText.Quote(pidFile)} is not locked by it)");
            }
        }

        switch (state.Kind)
        {
            case PidFileKind.Starting:
                return AwaitOtherStart(pidFile, state.Holder);
            case PidFileKind.Locked:
                return Fail(Mismatch(pidFile, state));
            case PidFileKind.Unusable:
                return Fail(state.Problem!);
        }

        // Fail here, in the terminal, before anything is started.
        _ = Identity.Resolve(Options.User, Options.Group);
        CreateDefaultFolder();

        var request = new LaunchRequest(pidFile, LogFilePath, Options.ReadyTimeout, [.. Options.KeepDescriptors]);
        LaunchResult result = _system.Launcher.Launch(request);
        return result.Outcome switch
        {
            LaunchOutcome.Ready => Say($"started (pid {result.Pid})"),
            LaunchOutcome.AlreadyRunning => AwaitOtherStart(pidFile, result.Pid),
            _ => Fail(result.Error ?? "the daemon failed to start"),
        };
    }

    /// <summary>
    /// Another <c>start</c> got there first: its daemon counts as running only once it is ready, so
    /// wait for its outcome (up to the ready timeout) and report that, not "already running".
    /// </summary>
    private int AwaitOtherStart(string pidFile, int pid)
    {
        PidFileState state = WaitWhileStarting(pidFile, pid, Options.ReadyTimeout);
        if (state.NamesItsHolder)
        {
            return Say($"already running (pid {state.Holder})");
        }

        return state.Kind == PidFileKind.Starting
            ? Fail($"pid {state.Holder}, started by another 'start', is still not ready after {OptionValues.ShowSeconds(Options.ReadyTimeout)} s (see {PathText.Quote(LogFilePath)})")
            : Fail($"pid {pid}, started by another 'start', stopped before it was ready (see {PathText.Quote(LogFilePath)})");
    }

    /// <summary>
    /// The longest a restart's next generation may take from its start to ready: its startup, the
    /// old one's stop and exit, its activation (as the launcher counts it).
    /// </summary>
    private TimeSpan TakeOverBound => Options.ReadyTimeout + Options.StopTimeout + StageProtocol.PredecessorExitGrace + Options.ReadyTimeout;

    /// <summary>
    /// While the pid file's holder is a daemon still starting (another start's, or a restart's next
    /// generation taking over), waits for it to be ready or gone, up to <paramref name="timeout"/>;
    /// returns the file's state then. The file says "ready" by naming its holder; an exit wakes
    /// the wait at once.
    /// </summary>
    private PidFileState WaitWhileStarting(string pidFile, int pid, TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        IProcessHandle? daemon = null;
        try
        {
            while (true)
            {
                PidFileState state = _system.PidFiles.Inspect(pidFile);
                long left = deadline - Environment.TickCount64;
                if (state.Kind != PidFileKind.Starting || left <= 0)
                {
                    return state;
                }

                if (state.Holder != pid || daemon is null)
                {
                    pid = state.Holder;
                    daemon?.Dispose();
                    daemon = _system.Processes.Open(pid);
                }

                _ = daemon?.WaitForExit(TimeSpan.FromMilliseconds(Math.Min(left, 20)));
            }
        }
        finally
        {
            daemon?.Dispose();
        }
    }

    /// <summary>
    /// The zero-downtime restart, when a ready daemon answers on its control channel; null when
    /// there is none to hand over from (then stop and start), said in one line. Every wait on the
    /// channel ends by the ready timeout: a daemon that does not answer (stopped, hung) is stopped
    /// the way <c>stop</c> stops it, then a new one starts.
    /// </summary>
    private int? RestartByHandover()
    {
        // With a NOTIFY_SOCKET, this is a unit's ExecReload= control process. A 'systemctl stop'
        // meanwhile sends it SIGTERM with the rest of the service, and systemd counts a control
        // process that dies of a signal (or exits non-zero) as the unit's failure: the stop wins,
        // cleanly (exit 0), whatever step the restart was at.
        using IDisposable? stopWins = string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"))
            ? null
            : _system.ExitCleanlyOnSigterm(() => _system.Error.WriteLine($"{Name}: restart cancelled: the service is stopping (SIGTERM)"));
        string pidFile = PidFilePath;
        PidFileState state = _system.PidFiles.Inspect(pidFile);
        if (state.Kind == PidFileKind.Starting)
        {
            // Another restart's generation taking over, or a start: hand over from it once it is ready.
            state = WaitWhileStarting(pidFile, state.Holder, TakeOverBound);
            if (state.Kind == PidFileKind.Starting)
            {
                return Fail($"restart failed: pid {state.Holder} is still starting after {OptionValues.ShowSeconds(TakeOverBound)} s (another start or restart); nothing was changed");
            }
        }

        if (!state.NamesItsHolder)
        {
            return null;
        }

        int running = state.Holder;
        HandoverProbe probe = _system.Launcher.ProbeHandover(pidFile, running, Options.ReadyTimeout);
        for (int follow = 0; probe.Result != HandoverProbeResult.Answers && follow < 8; follow++)
        {
            // It may have handed over to another restart's generation meanwhile: ask that one, once
            // it is ready (it may wait for the old one to exit first). Never a stop: it is the service.
            PidFileState now = _system.PidFiles.Inspect(pidFile);
            if (now.Kind == PidFileKind.Starting)
            {
                now = WaitWhileStarting(pidFile, now.Holder, TakeOverBound);
            }

            if (!now.NamesItsHolder || now.Holder == running)
            {
                break;
            }

            running = now.Holder;
            probe = _system.Launcher.ProbeHandover(pidFile, running, Options.ReadyTimeout);
        }

        string? fallback = probe switch
        {
            { Result: HandoverProbeResult.NoAnswer } => $"pid {running} did not answer on its control socket within {OptionValues.ShowSeconds(Options.ReadyTimeout)} s (stopped or hung): stopping it, then starting",
            { Result: HandoverProbeResult.NoChannel } => $"pid {running} has no control socket to hand its listeners over: stopping it, then starting",
            _ => null,
        };
        if ((fallback is not null || !probe.Supervised) && InServiceOf(running) is { } unit)
        {
            // From the unit's ExecReload=: a stop and start, or a next generation that systemd would
            // not take for the service's main process, would stop the service with the old one.
            return Fail($"pid {running} cannot be upgraded in place ({fallback ?? "it runs an older Daemon.NET, or not under 'run' with NOTIFY_SOCKET"}): nothing was changed; use 'systemctl restart {unit}' this time");
        }

        if (fallback is not null)
        {
            _system.Output.WriteLine(fallback);
            return null;
        }

        if (probe.Supervised && SupervisedRestartRefusal(running) is { } refusal)
        {
            return Fail(refusal);
        }

        _ = Identity.Resolve(Options.User, Options.Group);
        var request = new LaunchRequest(pidFile, LogFilePath, Options.ReadyTimeout, [.. Options.KeepDescriptors], TakeOver: true, Options.StopTimeout)
        {
            SupervisedWatchdogUsec = probe.SupervisedWatchdogUsec,
        };
        LaunchResult result = _system.Launcher.Launch(request);
        if (result.Outcome == LaunchOutcome.Failed)
        {
            // A new generation killed before its rename leaves its fresh file (NAME.new) behind.
            _ = _system.PidFiles.TryRemoveStale(pidFile, out _);
        }

        return result.Outcome switch
        {
            LaunchOutcome.Ready => Say(result.AfterPredecessor
                ? $"restarted (pid {result.Pid}; pid {running} handed over and exited)"
                : $"restarted (pid {result.Pid}; pid {running} hands over and drains)"),
            LaunchOutcome.TookOver => Fail($"restart incomplete: pid {result.Pid} took over from pid {running} but is not ready: {result.Error}; if pid {running} is still there, it begins once it has exited (kill -KILL {running})"),
            LaunchOutcome.AlreadyRunning => Fail($"restart failed: pid {result.Pid} holds the pid file"),
            _ when result.AfterCommit => Fail($"restart failed after pid {running} had handed over, so nothing runs now: {result.Error}"),
            _ => Fail($"restart failed, {WhatRuns(pidFile, running, probe.Listeners, result.Error)}: {result.Error ?? "the new daemon failed to start"}"),
        };
    }

    /// <summary>
    /// Why a daemon systemd supervises (<c>run</c> in a service) cannot be restarted from here, or
    /// null: its next generation must start inside the service (the unit's <c>ExecReload=</c> runs
    /// restart), where systemd accepts it as the service's main process; one started elsewhere
    /// would be left out of the service, and systemd would stop the service with the old one. And
    /// it must be able to tell systemd it is ready, and ping the watchdog: systemd gives
    /// ExecReload= a NOTIFY_SOCKET only with NotifyAccess=all (or exec), not main, its default.
    /// </summary>
    private string? SupervisedRestartRefusal(int running)
    {
        string? unit = Systemd.ServiceUnit.Of(running);
        if (unit is null || unit != Systemd.ServiceUnit.Of())
        {
            return $"pid {running} runs under systemd ({unit ?? "a service"}): restart it with 'systemctl reload {unit ?? "UNIT"}', whose ExecReload= runs '{Name} restart' with the options of ExecStart=, so that the next generation starts inside the service (docs/ADMIN.md)";
        }

        return string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"))
            ? $"{unit} gives its ExecReload= no NOTIFY_SOCKET, so the next generation could not tell systemd it is ready: set NotifyAccess=all in the unit (docs/ADMIN.md)"
            : null;
    }

    /// <summary>
    /// The systemd service this command and the daemon <paramref name="running"/> both run in, with
    /// a NOTIFY_SOCKET (the unit's <c>ExecReload=</c> with <c>NotifyAccess=all</c>); else null.
    /// </summary>
    private static string? InServiceOf(int running) =>
        OperatingSystem.IsLinux() && !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"))
        && Systemd.ServiceUnit.Of() is { } unit && unit == Systemd.ServiceUnit.Of(running) ? unit : null;

    /// <summary>What became of the running daemon when its next generation failed: said, not assumed.</summary>
    private string WhatRuns(string pidFile, int running, int listeners, string? error)
    {
        PidFileState state = _system.PidFiles.Inspect(pidFile);
        if (state.NamesItsHolder && state.Holder == running)
        {
            return error?.Contains(": it is stopping", StringComparison.Ordinal) == true
                ? $"pid {running} is stopping (nothing new was started)"
                : listeners > 0 ? $"pid {running} still runs and keeps its listeners" : $"pid {running} still runs";
        }

        return state.NamesItsHolder
            ? $"pid {state.Holder} runs now (another restart replaced pid {running})"
            : $"pid {running} is no longer running (it was stopped meanwhile)";
    }

    private int StopCore()
    {
        string pidFile = PidFilePath;
        PidFileState state = _system.PidFiles.Inspect(pidFile);
        switch (state.Kind)
        {
            case PidFileKind.Missing:
                return Say("not running");
            case PidFileKind.Unusable:
                return Fail(state.Problem!);
            case PidFileKind.Stale:
                IProcessHandle? unlocked = OpenUnlockedDaemon(state, out ProgramMatch match);
                if (unlocked is not null)
                {
                    return StopUnlockedDaemon(pidFile, state, unlocked);
                }

                if (match == ProgramMatch.Unknown)
                {
                    return Fail(CannotTell(pidFile, state) + "; not signalling it, and leaving the file");
                }

                RemoveStalePidFile(pidFile);
                return Say("not running");
        }

        if (!state.IsHeldByDaemon)
        {
            return Fail(Mismatch(pidFile, state));
        }

        using IProcessHandle? daemon = OpenHolder(pidFile, state.Holder, out string? refusal);
        if (refusal is not null)
        {
            return Fail(refusal);
        }

        // Noted now, removed once it is gone: a daemon that dropped root cannot unlink its socket files.
        IReadOnlyList<string> socketFiles = daemon is null ? [] : _system.SocketFilesOf(daemon.Pid);

        if (daemon is not null && Terminate(daemon) is { } ending)
        {
            if (ending.Failure is not null)
            {
                return Fail(ending.Failure);
            }

            // The daemon cannot say it was killed: its log would end at "stopping (SIGTERM)".
            DaemonLog.AppendFor(LogFilePath, Name, daemon.Pid, LogSeverity.Warning, $"killed (SIGKILL) by 'stop --force' after {ending.Seconds} s");

            RemoveStalePidFile(pidFile);
            RemoveStaleSocketFiles(socketFiles);
            return Say($"killed (pid {state.Holder}) after {ending.Seconds} s");
        }

        // A daemon killed with SIGKILL, or one that could not unlink after dropping root, leaves
        // its file behind: unlocked now, it is stale, and ours to remove.
        RemoveStalePidFile(pidFile);
        RemoveStaleSocketFiles(socketFiles);
        return FollowSuccessor(pidFile, state.Holder) ?? Say(_stoppedBefore is { } first
            ? $"stopped (pid {state.Holder}, which a restart started while pid {first} was stopping)"
            : $"stopped (pid {state.Holder})");
    }

    /// <summary>
    /// SIGTERM, then SIGCONT right after, as systemd does (a stopped daemon would otherwise keep the
    /// SIGTERM pending for good), then a wait of <c>--stop-timeout</c>; with <c>--force</c>, SIGKILL
    /// at the timeout. Null when it stopped (or was gone); else how it ended: killed, or the line
    /// that says why it is still there.
    /// </summary>
    private (string Seconds, string? Failure)? Terminate(IProcessHandle daemon)
    {
        if (!daemon.Signal(Signal.SIGTERM) || !daemon.Signal(Signal.SIGCONT) || daemon.WaitForExit(Options.StopTimeout))
        {
            return null;
        }

        string seconds = OptionValues.ShowSeconds(Options.StopTimeout);
        if (!Options.Force)
        {
            return (seconds, _restarting
                ? $"pid {daemon.Pid} did not stop within {seconds} s and may still stop on its own; nothing new was started: run '{Name} start' once it has stopped, or restart with a longer --stop-timeout (or --force)"
                : $"pid {daemon.Pid} did not stop within {seconds} s (stop --force sends SIGKILL)");
        }

        return daemon.Signal(Signal.SIGKILL) && !daemon.WaitForExit(_killGrace)
            ? (seconds, $"pid {daemon.Pid} did not exit even after SIGKILL")
            : (seconds, null);
    }

    /// <summary>
    /// A restart under way when <c>stop</c> came may have handed over just before the old
    /// generation exited: then stop goes on to the generation that serves now. Null when none does.
    /// </summary>
    private int? FollowSuccessor(string pidFile, int stopped)
    {
        PidFileState after = _system.PidFiles.Inspect(pidFile);
        if (!after.IsHeldByDaemon || after.Holder == stopped || _stoppedBefore is not null)
        {
            return null;
        }

        _stoppedBefore = stopped;
        try
        {
            return StopCore();
        }
        finally
        {
            _stoppedBefore = null;
        }
    }

    private int StatusCore()
    {
        string pidFile = PidFilePath;
        PidFileState state = _system.PidFiles.Inspect(pidFile);
        switch (state.Kind)
        {
            case PidFileKind.Missing:
                _system.Output.WriteLine("not running");
                return ExitCodes.NotRunning;
            case PidFileKind.Unusable:
                return Fail(state.Problem!, ExitCodes.Unknown);
            case PidFileKind.Stale:
                return StatusOfUnlocked(pidFile, state);
            case PidFileKind.Starting:
                _system.Output.WriteLine($"starting (pid {state.Holder})");
                return ExitCodes.Starting;
        }

        if (!state.NamesItsHolder)
        {
            return Fail(Mismatch(pidFile, state), ExitCodes.Unknown);
        }

        _system.Output.WriteLine($"running (pid {state.Holder})");
        WriteRunningDetails(state.Holder, pidFile, locked: true);
        return ExitCodes.Success;
    }

    /// <summary>
    /// Status by a file no daemon holds locked: running when it names a live process of this
    /// program (another tool wrote it), else dead with the file left, or unknown when the process it
    /// names cannot be looked at.
    /// </summary>
    private int StatusOfUnlocked(string pidFile, PidFileState state)
    {
        ProgramMatch match;
        using (IProcessHandle? unlocked = OpenUnlockedDaemon(state, out match))
        {
            if (unlocked is not null)
            {
                _system.Output.WriteLine($"running (pid {unlocked.Pid})");
                WriteRunningDetails(unlocked.Pid, pidFile, locked: false);
                return ExitCodes.Success;
            }

            if (match == ProgramMatch.Unknown)
            {
                return Fail(CannotTell(pidFile, state), ExitCodes.Unknown);
            }
        }

        string now = match == ProgramMatch.Other ? ", now another program's pid" : "";
        string log = StatusDetails.LogOfDeadDaemon(Options.LogFile, LogFilePath, Name, state.RecordedPid);
        _system.Output.WriteLine($"not running, but pid file {PathText.Quote(pidFile)} is left (it names {state.Content}{now}): it died or was killed{log}");
        return ExitCodes.Failure;
    }

    /// <summary>Since when, the pid file and the log file, under the first line that scripts read.</summary>
    private void WriteRunningDetails(int pid, string pidFile, bool locked)
    {
        if (_system.Processes.StartTime(pid) is { } started)
        {
            _system.Output.WriteLine(StatusDetails.Since(started, _system.Clock.GetUtcNow(), _system.Clock.LocalTimeZone));
        }

        _system.Output.WriteLine(locked ? $"  pid file {PathText.Quote(pidFile)}" : $"  pid file {PathText.Quote(pidFile)}, not locked by the daemon (another tool wrote it)");
        _system.Output.WriteLine(StatusDetails.LogFile(_system.Processes.StandardErrorTarget(pid), Options.LogFile, pid));
    }

    /// <summary>
    /// The live process that a file no daemon holds locked names, when it runs this same program:
    /// a daemon whose pid file another tool wrote (start-stop-daemon --make-pidfile, daemonize -p).
    /// Null when the file is stale: <paramref name="match"/> then says whether what it names exited,
    /// is another program (its pid was reused), or cannot be looked at. The handle holds the
    /// process, so that what is signalled is what was checked.
    /// </summary>
    private IProcessHandle? OpenUnlockedDaemon(PidFileState state, out ProgramMatch match)
    {
        match = ProgramMatch.Exited;
        if (state.Kind != PidFileKind.Stale || state.RecordedPid is not int pid || _system.Processes.Open(pid) is not { } process)
        {
            return null;
        }

        match = _system.Processes.RunsThisProgram(process);
        if (match == ProgramMatch.Same)
        {
            return process;
        }

        process.Dispose();
        return null;
    }

    /// <summary>
    /// Stops a daemon whose pid file another tool wrote, as start-stop-daemon would: SIGTERM and
    /// SIGCONT, then SIGKILL at the timeout with <c>--force</c>. The file goes only once the
    /// process is gone, and only if it still names it, as LSB's killproc does.
    /// </summary>
    private int StopUnlockedDaemon(string pidFile, PidFileState state, IProcessHandle daemon)
    {
        using (daemon)
        {
            int pid = daemon.Pid;
            if (UntrustedByRoot(pidFile, state, pid) is { } refusal)
            {
                return Fail(refusal);
            }

            if (Terminate(daemon) is { } ending)
            {
                if (ending.Failure is not null)
                {
                    return Fail(ending.Failure);
                }

                RemoveUnlockedPidFile(pidFile, pid);
                return Say($"killed (pid {pid}) after {ending.Seconds} s");
            }

            RemoveUnlockedPidFile(pidFile, pid);
            return Say($"stopped (pid {pid})");
        }
    }

    /// <summary>
    /// Root signals what an unlocked file names only when root wrote it: anyone else who can write
    /// a pid file could otherwise aim root's stop at another copy of this program. Null when trusted.
    /// </summary>
    private string? UntrustedByRoot(string pidFile, PidFileState state, int pid) =>
        _system.IsRoot && state.Owner is { } owner && owner != 0
            ? $"pid file {PathText.Quote(pidFile)} belongs to uid {owner} and no daemon locks it; not signalling pid {pid}, which it names"
            : null;

    private void RemoveUnlockedPidFile(string pidFile, int pid)
    {
        if (!_system.PidFiles.TryRemoveNaming(pidFile, pid, out string? problem))
        {
            _system.Error.WriteLine($"{Name}: {problem}");
        }
    }

    private static string CannotTell(string pidFile, PidFileState state) =>
        $"pid file {PathText.Quote(pidFile)} is not locked and names {state.Content}, a process whose program only root or its user can read: cannot tell whether it is this daemon";

    private int ReloadCore()
    {
        string pidFile = PidFilePath;
        PidFileState state = _system.PidFiles.Inspect(pidFile);
        using (IProcessHandle? unlocked = OpenUnlockedDaemon(state, out _))
        {
            if (unlocked is not null && UntrustedByRoot(pidFile, state, unlocked.Pid) is { } untrusted)
            {
                return Fail(untrusted);
            }

            if (unlocked is not null && unlocked.Signal(Signal.SIGHUP))
            {
                return Say($"reloading (pid {unlocked.Pid})");
            }
        }

        switch (state.Kind)
        {
            case PidFileKind.Missing:
            case PidFileKind.Stale:
                // On stdout, as stop and status say it: a state, not an error.
                _system.Output.WriteLine("not running");
                return ExitCodes.ReloadNotRunning;
            case PidFileKind.Unusable:
                return Fail(state.Problem!);
            case PidFileKind.Starting:
                return Fail($"pid {state.Holder} is still starting; not reloaded (try again once it is ready)");
        }

        if (!state.NamesItsHolder)
        {
            return Fail(Mismatch(pidFile, state));
        }

        using IProcessHandle? daemon = OpenHolder(pidFile, state.Holder, out string? refusal);
        if (refusal is not null)
        {
            return Fail(refusal);
        }

        if (daemon is null || !daemon.Signal(Signal.SIGHUP))
        {
            _system.Output.WriteLine("not running");
            return ExitCodes.ReloadNotRunning;
        }

        return Say($"reloading (pid {daemon.Pid})");
    }

    /// <summary>
    /// Opens the lock holder and checks, with the handle held, that it still holds the lock: from
    /// then on the handle names that process even if its pid is reused. Null when it has exited.
    /// </summary>
    private IProcessHandle? OpenHolder(string pidFile, int holder, out string? refusal)
    {
        refusal = null;
        IProcessHandle? process = _system.Processes.Open(holder);
        if (process is null)
        {
            return null;
        }

        PidFileState again = _system.PidFiles.Inspect(pidFile);
        if (again.IsHeldByDaemon && again.Holder != holder)
        {
            refusal = $"pid file {PathText.Quote(pidFile)} changed hands (pid {holder}, now {again.Holder}); not signalling";
        }
        else if (!again.IsHeldByDaemon)
        {
            // It exited between the two looks: nothing to signal.
            process.Dispose();
            return null;
        }
        else
        {
            return process;
        }

        process.Dispose();
        return null;
    }

    /// <summary>The socket files a stopped daemon left, which nobody accepts on (a next generation's stay).</summary>
    private void RemoveStaleSocketFiles(IReadOnlyList<string> paths)
    {
        foreach (string path in paths)
        {
            _ = _system.RemoveStaleSocketFile(path);
        }
    }

    private void RemoveStalePidFile(string pidFile)
    {
        if (!_system.PidFiles.TryRemoveStale(pidFile, out string? problem))
        {
            _system.Error.WriteLine($"{Name}: {problem}");
        }
    }

    private static string Mismatch(string pidFile, PidFileState state) =>
        $"pid file {PathText.Quote(pidFile)} names {state.Content} but pid {state.Holder} holds its lock; not signalling anything";

    private void CreateDefaultFolder()
    {
        // Only the per-user default folder is created; a folder named on the command line must exist.
        if (OperatingSystem.IsLinux()
            && _paths.OwnFolder is { } folder
            && (Options.PidFile is null || Options.LogFile is null)
            && !Directory.Exists(folder))
        {
            try
            {
                Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new DaemonException($"cannot create folder {PathText.Quote(folder)}: {e.Message}", e);
            }
        }
    }

    private int Guarded(string command, Func<int> body, int failure = ExitCodes.Failure) => Guarded<int>(command, body, failure);

    private T Guarded<T>(string command, Func<T> body, T failure)
    {
        if (!OperatingSystem.IsLinux())
        {
            _system.Error.WriteLine($"{Name}: '{command}' needs Linux; on this system use 'run'");
            return failure;
        }

        try
        {
            return body();
        }
        catch (DaemonException e)
        {
            _system.Error.WriteLine($"{Name}: {e.Message}");
            return failure;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            _system.Error.WriteLine($"{Name}: {command} failed: {e.Message}");
            return failure;
        }
    }

    private int Say(string message)
    {
        _system.Output.WriteLine(message);
        return ExitCodes.Success;
    }

    /// <summary>A failure: one line on stderr, <c>NAME: REASON</c>, and its exit code.</summary>
    private int Fail(string message, int exitCode = ExitCodes.Failure)
    {
        _system.Error.WriteLine($"{Name}: {message}");
        return exitCode;
    }
}
