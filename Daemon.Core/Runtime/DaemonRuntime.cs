using System;
using System.Threading;
using Daemon.Handover;
using Daemon.Launching;
using Daemon.Logging;
using Daemon.Options;
using Daemon.PidFiles;
using Daemon.Security;
using Daemon.Systemd;

namespace Daemon.Runtime;

/// <summary>
/// The daemon's life inside its own process, for <c>start</c> (background) and <c>run</c>
/// (foreground). <see cref="Execute"/> reads top to bottom like the man page.
/// </summary>
internal sealed class DaemonRuntime
{
    private readonly DaemonHooks _hooks;
    private readonly DaemonOptions _options;
    private readonly DaemonFiles _files;
    private readonly bool _background;
    private readonly bool _takeOver;
    private readonly CancellationTokenSource _stopping = new();
    private readonly object _reloadGate = new();
    private readonly SystemdNotifier _notifier;
    private readonly IDaemonSteps _steps;
    private readonly PidFileSlot _pidFile = new();
    // The ready timeout counts from here for the EXTEND_TIMEOUT_USEC of both hooks (startup, activation).
    private readonly long _created = TimeProvider.System.GetTimestamp();
    private readonly Generation _generation;
    private volatile bool _ready;
    private volatile bool _finished;
    private Watchdog? _watchdog;

    /// <summary>True when this process runs in a systemd service (its cgroup says so), not only with a NOTIFY_SOCKET.</summary>
    private readonly bool _inService = Systemd.ServiceUnit.Of() is not null;

    /// <summary>The watchdog interval systemd gave (0: none), read before the watchdog takes the variable away.</summary>
    private readonly long _watchdogUsec = Watchdog.MicrosecondsOf(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), Environment.GetEnvironmentVariable("WATCHDOG_PID"));
    // The signal that asked for the stop, null until one did: set before anything of the stop is
    // said or done, so that whoever sees "stopping" in the log finds the startup stopped too.
    private string? _stopSignal;
    private bool _tellCaller;

    /// <summary>A daemon run with <paramref name="hooks"/>, in the background or not, with its files resolved once.</summary>
    /// <param name="hooks">What the runtime needs of the daemon.</param>
    /// <param name="options">Its options.</param>
    /// <param name="files">Its pid and log files.</param>
    /// <param name="background">True for <c>start</c>, false for <c>run</c>.</param>
    /// <param name="takeOver">True for a restart's new generation, which takes over from the running daemon.</param>
    /// <param name="steps">The system calls, behind the seam tests mock.</param>
    /// <param name="logLines">For testing: where log lines go as well.</param>
    public DaemonRuntime(DaemonHooks hooks, DaemonOptions options, DaemonFiles files, bool background, bool takeOver, IDaemonSteps steps, System.IO.TextWriter? logLines = null)
    {
        _hooks = hooks;
        _options = options;
        _files = files;
        _background = background;
        _takeOver = takeOver;
        _steps = steps;
        Log = new DaemonLog(hooks.Name, hooks.Logged, logLines);
        _notifier = background ? new SystemdNotifier(null, null) : SystemdNotifier.FromEnvironment(Log);
        _generation = new Generation(files.PidFile, Listeners, Log, steps, _pidFile);
    }

    public DaemonLog Log { get; }

    /// <summary>The listeners of this generation: inherited on a zero-downtime restart, or bound afresh.</summary>
    public ListenerSet Listeners { get; } = new();

    /// <summary>The next generation's pid once this daemon handed its listeners over to it, else 0.</summary>
    public int Successor => _generation.Successor;

    /// <summary>Runs the daemon to its end and returns its exit code.</summary>
    /// <param name="launcher">The readiness pipe to the launcher, in the background; null in the foreground.</param>
    public int Execute(ReadinessWriter? launcher)
    {
        int exitCode = ExitCodes.Failure;
        launcher?.KeepFromChildren();
        try
        {
            CheckMainLoop();
            _steps.HandleSignals(RequestStop, Reload);
            Identity? identity = _steps.ResolveIdentity(_options.User, _options.Group);
            _steps.SetFileCreationMask(_options.Umask);
            if (_background)
            {
                _steps.ChangeWorkingDirectory(_options.WorkingDirectory);
                _steps.RedirectStreams(Log, _files.LogFile!);
            }
            else if (_files.LogFile is not null)
            {
                // Whoever runs "run --log-file" still hears why startup failed, not only the log:
                // through the command's error stream, a copy of 2 made before the log took it over.
                _tellCaller = true;
                _hooks.KeepCallerStreams();
                _steps.RedirectStreams(Log, _files.LogFile);
            }
            else
            {
                Log.Line("starting");
            }

            if (!_background)
            {
                // A NOTIFY_SOCKET we cannot use, or passed descriptors that do not fit, refuse the start.
                _notifier.Open();

                // systemd socket activation: what it passed is offered to Listen, by name or address.
                SocketActivation.TakePassedSockets(Listeners, Log);
            }

            Generation generation = _generation;
            if (_takeOver)
            {
                generation.TakeListeners(identity?.Uid, _options.ReadyTimeout);
            }
            else if (!LockPidFile(launcher))
            {
                return exitCode = _background ? ExitCodes.Success : ExitCodes.Failure;
            }

            RunStartupHook(_hooks.StartupAsync);
            Listeners.CloseUnclaimed(Log);
            if (!StopRequested)
            {
                generation.Offer(Interop.Posix.GetEffectiveUid(), identity is not null, Supervision);
            }

            if (generation.IsSuccessor)
            {
                TellLauncher(launcher, StageProtocol.TakingOver);
                generation.TakeOverPidFile();
            }

            generation.Commit(awaitRelease: _notifier.IsEnabled, awaitExit: !_hooks.OverlapOnRestart);
            if (generation.IsSuccessor)
            {
                // From here this generation is the service: the launcher never kills it.
                TellLauncher(launcher, StageProtocol.Committed);
            }

            if (!_background && generation.IsSuccessor)
            {
                // Pinging from here: under systemd a restart's next generation is the main process
                // once committed, through the wait for the old one and its activation. Until ready,
                // alive is all it can say; then the health check decides.
                StartWatchdog();
            }

            if (generation.IsSuccessor && !_hooks.OverlapOnRestart && !AwaitPredecessor(launcher))
            {
                return exitCode = ExitCodes.Success;
            }

            RunStartupHook(_hooks.ActivateAsync);
            DropPrivileges(identity);
            DeclareReady(launcher);
            _ = generation.HandedOver.Register(() =>
            {
                GiveUpMainProcess(generation.Successor);
                RequestStop($"handed over to pid {generation.Successor}");
            });
            generation.Serve();
            if (!_background)
            {
                // systemd keeps the listeners across a restart: the kernel queues what comes meanwhile.
                FileDescriptorStore.Keep(Listeners, _notifier, Log);
                if (_watchdog is null)
                {
                    StartWatchdog();
                }
            }

            _hooks.Run(_stopping.Token);
            return exitCode = ExitCodes.Success;
        }
        catch (Exception e) when (!_ready)
        {
            string reason = e is DaemonException ? e.Message : $"startup failed: {e.Message}";
            Log.Line(LogSeverity.Error, e is DaemonException ? reason : $"{reason}\n{e}");
            _ = launcher?.Send(StageProtocol.Error, reason);

            // systemctl status shows the reason; start-stop-daemon --notify-await fails at once on the
            // errno. Not a restart's next generation: the service's main process runs on, and restart says why.
            if (!_takeOver)
            {
                _notifier.StartupFailed(reason, DaemonException.ErrnoIn(e));
            }

            // Said once: a log that never opened wrote the line to the caller's stderr already.
            if (_tellCaller && Log.Path is not null)
            {
                string priority = Log.StartedOnJournal ? DaemonLog.Priority(LogSeverity.Error) : "";
                _hooks.CommandError.WriteLine($"{priority}{_hooks.Name}: {reason}");
            }

            return exitCode = ExitCodes.Failure;
        }
        catch (Exception e)
        {
            Log.Line(LogSeverity.Error, $"unhandled exception: {e}");
            return exitCode = ExitCodes.Failure;
        }
        finally
        {
            _watchdog?.Dispose();
            _generation.Dispose();
            if (_generation.OwnsSocketFiles)
            {
                // No generation will accept again on the socket files of listeners not handed over.
                Listeners.RemoveSocketFiles();
            }

            Listeners.CloseAll();
            launcher?.Dispose();

            // A daemon that was running and died of a fault leaves its file, unlocked: status then
            // says dead (1) rather than never started (3), and the next start or stop removes it as
            // it does the file of a killed daemon.
            bool hadPidFile = _pidFile.Current is not null;
            _pidFile.Close(leaveForStatus: _ready && exitCode != ExitCodes.Success);
            if (hadPidFile || _ready)
            {
                Log.Line(exitCode == ExitCodes.Success ? LogSeverity.Information : LogSeverity.Error, $"stopped (exit {exitCode})");
            }

            _notifier.Dispose();

            // The handlers stay registered until the process ends (a late SIGTERM must not kill a
            // daemon that is exiting cleanly with its default action); from here on they do nothing.
            _finished = true;
        }
    }

    /// <summary>WATCHDOG=1 while alive and, once ready, healthy (sd_watchdog_enabled(3)).</summary>
    private void StartWatchdog() => _watchdog = Watchdog.Start(_notifier, () => !_ready || _hooks.IsHealthy(), Log);

    /// <summary>A daemon that overrides neither Run nor RunAsync fails here, before it is ready.</summary>
    private void CheckMainLoop()
    {
        if (_hooks.MainLoopMissing is { } why)
        {
            throw new DaemonException(why);
        }
    }

    /// <summary>Takes the pid file; false when another daemon holds it (reported, not an error for start).</summary>
    private bool LockPidFile(ReadinessWriter? launcher)
    {
        string? path = _files.PidFile;
        if (path is null)
        {
            return true;
        }

        IPidFile? locked = _steps.LockPidFile(path, out int holder);
        if (locked is not null)
        {
            _pidFile.Hold(locked);
            // The file stays, unlocked once the process is gone: status then says dead, not never started.
            AppDomain.CurrentDomain.UnhandledException += (_, e) => Log.Line(LogSeverity.Error, $"unhandled exception: {e.ExceptionObject}");
            return true;
        }

        if (launcher is not null)
        {
            // Another start won the race: not a failure, and its launcher says so on the terminal.
            Log.Line($"already running (pid {holder}); this one exits");
            _ = launcher.Send(StageProtocol.Running, ReadinessMessage.Format(holder));
            return false;
        }

        // run: a failure, logged (and told to the caller) once, where startup failures are.
        throw new DaemonException($"already running (pid {holder}, pid file {Files.PathText.Quote(path)})");
    }

    /// <summary>
    /// Tells the launcher of a restart's new generation that a step of the takeover is reached.
    /// Before the pid file changes hands, a launcher gone by now has told nobody that we run: stop
    /// before anything changes hands. Once committed, this generation is the service either way.
    /// </summary>
    private void TellLauncher(ReadinessWriter? launcher, string step)
    {
        if (launcher is not null && !launcher.Send(StageProtocol.Progress, step) && step == StageProtocol.TakingOver)
        {
            throw new DaemonException("the launcher went away before the daemon was ready");
        }
    }

    /// <summary>
    /// The previous generation stops once this one committed: its main loop and this one's never
    /// run at once. False when a stop request ended the wait: committed, this generation is the
    /// service, and a stop of the service is a clean exit (0; under systemd the unit ends
    /// inactive, not failed), though the restart that started it did not finish, and its launcher
    /// says so.
    /// </summary>
    private bool AwaitPredecessor(ReadinessWriter? launcher)
    {
        TellLauncher(launcher, StageProtocol.AwaitingPredecessor);
        try
        {
            _generation.AwaitPredecessorExit(_options.StopTimeout, _options.Force, _stopping.Token);
            return true;
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            string reason = $"stopped by {_stopSignal} while waiting for the previous generation to exit; the main loop never began";
            Log.Line(reason);
            _ = launcher?.Send(StageProtocol.Error, reason);
            return false;
        }
    }

    private void RunStartupHook(Func<CancellationToken, System.Threading.Tasks.Task> hook)
    {
        // Under a service manager, a slow hook asks for time beyond TimeoutStartSec=, up to the ready timeout.
        using (StartupExtension.Start(_notifier, Log, _options.ReadyTimeout, _created, _stopping.Token))
        {
            try
            {
                hook(_stopping.Token).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                // A hook that honours its token: the stop signal is the reason, said below.
            }
        }

        if (StopRequested)
        {
            throw new DaemonException($"stopped by {_stopSignal} during startup");
        }
    }

    private void DropPrivileges(Identity? identity)
    {
        if (identity is null)
        {
            return;
        }

        _steps.DropPrivileges(Log, identity);
        Log.Line($"running as user {identity.User} (uid {identity.Uid}, gid {identity.Gid})");
    }

    private void DeclareReady(ReadinessWriter? launcher)
    {
        // The pid goes into the file first: whoever "start" tells that we run finds it there.
        IPidFile? pidFile = _pidFile.Current;
        pidFile?.Publish(Environment.ProcessId);

        // Ready before the launcher hears it: "start" returns on READY, and a reload that follows at
        // once (start && reload) must find the daemon ready, not be ignored.
        _ready = true;

        // A launcher that was killed while waiting has told nobody that we run: stop, do not linger.
        // Once a running daemon handed over to us, though, we are the service: go on.
        if (launcher is not null && !launcher.Send(StageProtocol.Ready, ReadinessMessage.Format(Environment.ProcessId)) && !_generation.IsSuccessor)
        {
            _ready = false;
            throw new DaemonException("the launcher went away before the daemon was ready");
        }

        launcher?.Dispose();
        _notifier.Ready();
        Log.Line(pidFile is null ? "ready" : $"ready (pid file {Files.PathText.Quote(pidFile.Path)})");
    }

    /// <summary>
    /// What the control channel tells a restart's probe when systemd supervises this daemon (<c>run</c>
    /// in a service, with NOTIFY_SOCKET; start-stop-daemon's --notify-await sets one too, outside any
    /// service): "supervised=" and the watchdog interval; null otherwise.
    /// </summary>
    private string? Supervision() =>
        _notifier.IsEnabled && !_notifier.IsStartStopDaemons && _inService
            ? $"{HandoverProtocol.Supervised}{_watchdogUsec.ToString(System.Globalization.CultureInfo.InvariantCulture)}"
            : null;

    /// <summary>
    /// Under systemd, handed over to a next generation started in the service: this main process
    /// tells systemd the new one's pid (MAINPID=, which the main process may say under any
    /// NotifyAccess=) before it stops, so systemd never sees the service's main process exit.
    /// </summary>
    private void GiveUpMainProcess(int successor)
    {
        if (Supervision() is null)
        {
            return;
        }

        if (_notifier.MainPid(successor))
        {
            Log.Line($"pid {successor} is the service's main process now (MAINPID=)");
        }
        else
        {
            Log.Line(LogSeverity.Warning, $"cannot tell systemd that pid {successor} is the service's main process now (MAINPID=): it may stop the service when this one exits");
        }
    }

    /// <summary>True once a stop was asked for, from before it is logged or the token fires.</summary>
    private bool StopRequested => Volatile.Read(ref _stopSignal) is not null;

    private void RequestStop(string signal)
    {
        if (_finished || Interlocked.CompareExchange(ref _stopSignal, signal, null) is not null)
        {
            return;
        }

        _generation.Refuse($"it is stopping ({signal})");
        Listeners.ShareWithSystemd();
        _watchdog?.Dispose();
        Log.Line($"stopping ({signal})");

        // Handed over, the service is not stopping: its main process is the next generation.
        if (_generation.Successor == 0)
        {
            _notifier.Stopping();
        }

        _stopping.Cancel();
    }

    private void Reload()
    {
        if (_finished || StopRequested)
        {
            // Stopping: the log and the configuration are about to be closed for good.
            return;
        }

        if (!_ready)
        {
            Log.Line(LogSeverity.Warning, "reload (SIGHUP) ignored: not ready yet");
            return;
        }

        lock (_reloadGate)
        {
            _notifier.Reloading();
            try
            {
                Log.Reopen();
            }
            catch (DaemonException e)
            {
                Log.Line(LogSeverity.Warning, $"reload: {e.Message}; still writing to the old log");
            }

            Log.Line("reloading (SIGHUP)");
            try
            {
                _hooks.Reload();
            }
            catch (DaemonException e)
            {
                // A failure the daemon's code foresaw and put in words (a file that does not parse):
                // one line, and the daemon goes on as it was.
                Log.Line(LogSeverity.Warning, $"reload failed: {e.Message}");
            }
            catch (Exception e)
            {
                // A bug in OnReload: its stack trace helps whoever fixes it.
                Log.Line(LogSeverity.Error, $"reload failed: {e}");
            }

            _notifier.Ready();
        }
    }
}
