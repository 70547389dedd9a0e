using System;
using System.Threading;
using Daemon.Handover;
using Daemon.Launching;
using Daemon.Logging;
using Daemon.Security;
using Daemon.Systemd;

namespace Daemon.Runtime;

/// <summary>
/// The daemon's life inside its own process, for <c>start</c> (background) and <c>run</c>
/// (foreground). <see cref="Execute"/> reads top to bottom like the man page.
/// </summary>
internal sealed class DaemonRuntime
{
    private readonly DaemonBase _owner;
    private readonly DaemonOptions _options;
    private readonly bool _background;
    private readonly CancellationTokenSource _stopping = new();
    private readonly object _reloadGate = new();
    private readonly SystemdNotifier _notifier;
    private readonly IDaemonSteps _steps;
    private IPidFile? _pidFile;
    private volatile bool _ready;
    private volatile bool _finished;
    private volatile int _successor;
    private bool _committed;
    private bool _ownsListeners;
    private readonly object _pidFileGate = new();
    private HandoverServer? _handover;
    private Watchdog? _watchdog;
    private string _stopSignal = "a signal";
    private bool _tellCaller;

    public DaemonRuntime(DaemonBase owner, bool background)
        : this(owner, background, DaemonSteps.Instance, null)
    {
    }

    /// <summary>For testing: a daemon whose steps go to <paramref name="steps"/> and whose log lines to <paramref name="logLines"/>.</summary>
    internal DaemonRuntime(DaemonBase owner, bool background, IDaemonSteps steps, System.IO.TextWriter? logLines)
    {
        _owner = owner;
        _options = owner.Options;
        _background = background;
        _steps = steps;
        Log = new DaemonLog(owner.Name, owner.InvokeLogged, logLines);
        _notifier = background ? new SystemdNotifier(null) : SystemdNotifier.FromEnvironment();
        owner.Runtime = this;
    }

    public DaemonLog Log { get; }

    /// <summary>The listeners of this generation: inherited on a zero-downtime restart, or bound afresh.</summary>
    public ListenerSet Listeners { get; } = new();

    /// <summary>True for a daemon that takes over from the running one (a zero-downtime restart).</summary>
    public bool TakeOver { get; init; }

    /// <summary>The next generation's pid once this daemon handed its listeners over to it, else 0.</summary>
    public int Successor => _successor;

    /// <summary>Runs the daemon to its end and returns its exit code.</summary>
    /// <param name="launcher">The readiness pipe to the launcher, in the background; null in the foreground.</param>
    public int Execute(ReadinessWriter? launcher)
    {
        int exitCode = ExitCodes.Failure;
        launcher?.KeepFromChildren();
        launcher?.Send(StageProtocol.Pid, ReadinessMessage.Format(Environment.ProcessId));
        try
        {
            CheckMainLoop();
            _steps.HandleSignals(RequestStop, Reload);
            Identity? identity = _steps.ResolveIdentity(_options.User, _options.Group);
            _steps.SetFileCreationMask(_options.Umask);
            if (_background)
            {
                _steps.ChangeWorkingDirectory(_options.WorkingDirectory);
                _steps.RedirectStreams(Log, _owner.LogFilePath);
            }
            else if (_options.LogFile is not null)
            {
                // Whoever runs "run --log-file" still hears why startup failed, not only the log:
                // through the command's error stream, a copy of 2 made before the log took it over.
                _tellCaller = true;
                _owner.KeepCallerStreams();
                _steps.RedirectStreams(Log, _options.LogFile);
            }
            else
            {
                Log.Line("starting");
            }

            if (!_background)
            {
                // systemd socket activation: what it passed is offered to Listen, by name or address.
                _ = SocketActivation.TakePassedSockets(Listeners, Log);
            }

            using IPredecessor? predecessor = TakeOver ? ConnectToPredecessor(identity) : null;
            _ownsListeners = predecessor is null;
            if (predecessor is null && !LockPidFile(launcher))
            {
                return exitCode = _background ? ExitCodes.Success : ExitCodes.Failure;
            }

            RunStartupHook();
            Listeners.CloseUnclaimed(Log);
            if (predecessor is not null)
            {
                TakeOverPidFile(launcher);
            }

            DropPrivileges(identity);
            if (predecessor is not null)
            {
                // From here the running daemon stops accepting: the queue is ours.
                predecessor.Commit(Environment.ProcessId);
                predecessor.Dispose();
                _committed = true;
                _ownsListeners = true;
            }

            // Before ready: a restart right after start must find the control socket there.
            OpenHandoverServer();
            DeclareReady(launcher);
            if (!_background)
            {
                _watchdog = Watchdog.Start(_notifier, _owner.InvokeIsHealthy, Log);
            }

            _owner.InvokeRun(_stopping.Token);
            return exitCode = ExitCodes.Success;
        }
        catch (Exception e) when (!_ready)
        {
            string reason = e is DaemonException ? e.Message : $"startup failed: {e.Message}";
            Log.Line(LogSeverity.Error, e is DaemonException ? reason : $"{reason}\n{e}");
            _ = launcher?.Send(StageProtocol.Error, reason);
            // Said once: a log that never opened wrote the line to the caller's stderr already.
            if (_tellCaller && Log.Path is not null)
            {
                _owner.CommandError.WriteLine($"{_owner.Name}: {reason}");
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
            _handover?.Dispose();
            if (_ownsListeners)
            {
                // No generation will accept again on the socket files of listeners not handed over.
                Listeners.RemoveSocketFiles();
            }

            Listeners.CloseAll();
            launcher?.Dispose();
            lock (_pidFileGate)
            {
                if (_ready && exitCode != ExitCodes.Success)
                {
                    // A daemon that was running and died of a fault leaves its file, unlocked: status
                    // then says dead (1) rather than never started (3), and the next start or stop
                    // removes it as it does the file of a killed daemon.
                    (_pidFile as IDisposable)?.Dispose();
                }
                else
                {
                    _pidFile?.Remove();
                }
            }

            if (_pidFile is not null || _ready)
            {
                Log.Line(exitCode == ExitCodes.Success ? LogSeverity.Information : LogSeverity.Error, $"stopped (exit {exitCode})");
            }

            _notifier.Dispose();

            // The handlers stay registered until the process ends (a late SIGTERM must not kill a
            // daemon that is exiting cleanly with its default action); from here on they do nothing.
            _finished = true;
        }
    }

    /// <summary>A daemon that overrides neither Run nor RunAsync fails here, before it is ready.</summary>
    private void CheckMainLoop()
    {
        if (!_owner.HasMainLoop)
        {
            throw new DaemonException($"{_owner.GetType().Name} overrides neither Run nor RunAsync: it has no main loop");
        }
    }

    /// <summary>Takes the pid file; false when another daemon holds it (reported, not an error for start).</summary>
    private bool LockPidFile(ReadinessWriter? launcher)
    {
        string? path = _background ? _owner.PidFilePath : _options.PidFile;
        if (path is null)
        {
            return true;
        }

        _pidFile = _steps.LockPidFile(path, out int holder);
        if (_pidFile is not null)
        {
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
    /// Zero-downtime restart: the running daemon's listeners, over its control socket. None runs
    /// any more (it was stopped meanwhile): then this is a plain start.
    /// </summary>
    private IPredecessor? ConnectToPredecessor(Identity? identity)
    {
        IPredecessor? predecessor = _steps.ConnectToPredecessor(_owner.PidFilePath, Listeners, identity?.Uid);
        if (predecessor is not null)
        {
            Log.Line($"taking over from pid {predecessor.Pid}: {Listeners.InheritedCount} listener(s) handed over");
        }

        return predecessor;
    }

    /// <summary>
    /// Puts our pid in the file in one rename, while the running daemon still serves. A launcher
    /// gone by now has told nobody that we run: stop before anything changes hands.
    /// </summary>
    private void TakeOverPidFile(ReadinessWriter? launcher)
    {
        if (launcher is not null && !launcher.Send(StageProtocol.Progress, StageProtocol.TakingOver))
        {
            throw new DaemonException("the launcher went away before the daemon was ready");
        }

        _pidFile = _steps.TakeOverPidFile(_owner.PidFilePath, Environment.ProcessId);
    }

    /// <summary>Offers this generation's listeners to the next one, for a zero-downtime restart.</summary>
    private void OpenHandoverServer()
    {
        string? path = _background ? _owner.PidFilePath : _options.PidFile;
        if (path is not null && Listeners.Own.Count > 0 && OperatingSystem.IsLinux() && !_stopping.IsCancellationRequested)
        {
            _handover = HandoverServer.Open(path, Listeners, Log, HandedOver, TakeBackPidFile);
        }
    }

    private void HandedOver(int successor)
    {
        _successor = successor;

        // Shared sockets from now on. Disposing a .NET Socket with a blocking Accept under way
        // shuts it down to wake that call, which would stop the successor's copy too; .NET spares
        // a socket that is not close-on-exec, as one that may be shared.
        Listeners.MarkHandedOver(Listeners.Own.ConvertAll(l => l.Name));
        RequestStop($"handed over to pid {successor}");
    }

    /// <summary>A next generation that had renamed its pid file over ours died before it committed: ours again.</summary>
    private void TakeBackPidFile(int failed)
    {
        lock (_pidFileGate)
        {
            TakeBackPidFileLocked(failed);
        }
    }

    private void TakeBackPidFileLocked(int failed)
    {
        if (_pidFile is null || _pidFile.IsAtItsPath || _finished)
        {
            return;
        }

        try
        {
            IPidFile ours = _steps.TakeOverPidFile(_pidFile.Path, Environment.ProcessId);
            (_pidFile as IDisposable)?.Dispose();
            _pidFile = ours;
            Log.Line(LogSeverity.Warning, $"pid file {Files.PathText.Quote(ours.Path)} names this daemon again (pid {failed} failed)");
        }
        catch (DaemonException e)
        {
            Log.Line(LogSeverity.Error, $"cannot take pid file back after pid {failed} failed: {e.Message}; status will not see this daemon");
        }
    }

    private void RunStartupHook()
    {
        try
        {
            _owner.InvokeStartupAsync(_stopping.Token).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // A hook that honours its token: the stop signal is the reason, said below.
        }

        if (_stopping.IsCancellationRequested)
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
        _pidFile?.Publish(Environment.ProcessId);

        // A launcher that was killed while waiting has told nobody that we run: stop, do not linger.
        // Once a running daemon handed over to us, though, we are the service: go on.
        if (launcher is not null && !launcher.Send(StageProtocol.Ready, ReadinessMessage.Format(Environment.ProcessId)) && !_committed)
        {
            throw new DaemonException("the launcher went away before the daemon was ready");
        }

        launcher?.Dispose();
        _ready = true;
        _notifier.Ready();
        Log.Line(_pidFile is null ? "ready" : $"ready (pid file {Files.PathText.Quote(_pidFile.Path)})");
    }

    private void RequestStop(string signal)
    {
        if (_finished || _stopping.IsCancellationRequested)
        {
            return;
        }

        _stopSignal = signal;
        _handover?.Refuse($"it is stopping ({signal})");
        _watchdog?.Dispose();
        Log.Line($"stopping ({signal})");
        _notifier.Stopping();
        _stopping.Cancel();
    }

    private void Reload()
    {
        if (_finished || _stopping.IsCancellationRequested)
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
                _owner.InvokeReload();
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
