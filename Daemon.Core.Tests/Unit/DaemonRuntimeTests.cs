using Daemon.Commands;
using Daemon.Handover;
using Daemon.Launching;
using Daemon.Logging;
using Daemon.PidFiles;
using Daemon.Runtime;
using Daemon.Security;
using Mono.Unix.Native;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// The order of the daemon's steps on its way up, through the <see cref="IDaemonSteps"/> seam,
/// as python-daemon's tests check the order of <c>DaemonContext.open()</c>.
/// </summary>
[TestFixture]
public sealed class DaemonRuntimeTests
{
    private readonly List<string> _steps = new();
    private StringWriter _log = null!;
    private int _readEnd = -1;
    private int _writeEnd = -1;

    [SetUp]
    public void SetUp()
    {
        _steps.Clear();
        _log = new StringWriter();
        Assert.That(Syscall.pipe(out _readEnd, out _writeEnd), Is.EqualTo(0));
    }

    [TearDown]
    public void TearDown()
    {
        _log.Dispose();
        _ = Syscall.close(_readEnd);

        // Not handed to a ReadinessWriter (a foreground run has none): ours to close.
        if (_writeEnd >= 0)
        {
            _ = Syscall.close(_writeEnd);
        }
    }

    [Test]
    public void Start_TakesItsStepsInTheManPagesOrder_AndSaysReadyOnlyAfterThePidIsWritten()
    {
        var daemon = new RecordingDaemon(_steps) { Options = { User = "nobody", LogFile = "/var/log/t.log", PidFile = "/run/t.pid", Umask = 0b000_010_111 } };

        int exitCode = Execute(daemon);

        Assert.That(exitCode, Is.EqualTo(ExitCodes.Success), _log.ToString());
        Assert.That(_steps, Is.EqualTo(new[]
        {
            "handle signals",
            "resolve identity nobody",
            "umask 027",
            "chdir /",
            "redirect streams to /var/log/t.log",
            "lock pid file /run/t.pid",
            "startup hook",
            "activation hook",
            "drop privileges to nobody",
            "publish pid",
            "run",
            "remove pid file",
        }));
        Assert.That(Readiness(), Is.EqualTo($"READY {Environment.ProcessId}\n"), "READY after the pid is in the file (the detach stage told the pid)");
    }

    [Test]
    public void AReloadSentTheMomentTheLauncherHearsReady_IsNotIgnored()
    {
        // "start && reload": start returns on READY, and the SIGHUP may come before the daemon's
        // thread has gone one instruction further. Ready must be true before READY is written.
        var steps = new RecordingSteps(_steps);
        var daemon = new ReloadWaitingDaemon { Options = { PidFile = "/run/t.pid" } };
        Task<int> running = Task.Run(() => Execute(daemon, steps: steps));

        using var stream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(_readEnd, ownsHandle: true), FileAccess.Read);
        _readEnd = -1;
        using var reader = new StreamReader(stream);
        Assert.That(reader.ReadLine(), Is.EqualTo($"READY {Environment.ProcessId}"));
        steps.Reload!.Invoke();

        Assert.That(running.Wait(TimeSpan.FromSeconds(30)), Is.True, _log.ToString());
        Assert.That(running.Result, Is.EqualTo(ExitCodes.Success));
        Assert.That(daemon.Reloaded.IsSet, Is.True, "OnReload ran");
        Assert.That(_log.ToString(), Does.Not.Contain("not ready yet"));
    }

    [Test]
    public void Start_FailsBeforeAnyStep_WhenTheSubclassHasNoMainLoop()
    {
        var daemon = new NoMainLoopDaemon();

        int exitCode = Execute(daemon);

        Assert.That(exitCode, Is.EqualTo(ExitCodes.Failure));
        Assert.That(_steps, Is.Empty, "nothing was opened or locked");
        Assert.That(Readiness(), Is.EqualTo($"ERROR NoMainLoopDaemon overrides neither Run nor RunAsync: it has no main loop\n"));
    }

    [Test]
    public void Start_NeitherDropsPrivilegesNorSaysReady_WhenTheStartupHookThrows()
    {
        var daemon = new RecordingDaemon(_steps, failStartup: true) { Options = { User = "nobody", LogFile = "/var/log/t.log", PidFile = "/run/t.pid" } };

        int exitCode = Execute(daemon);

        Assert.That(exitCode, Is.EqualTo(ExitCodes.Failure));
        Assert.That(_steps, Does.Not.Contain("drop privileges to nobody").And.Not.Contain("publish pid").And.Not.Contain("run"));
        Assert.That(_steps[^1], Is.EqualTo("remove pid file"));
        Assert.That(Readiness(), Does.EndWith("ERROR startup failed: hook failed\n"));
        Assert.That(_log.ToString(), Does.Contain("System.InvalidOperationException: hook failed"), "the stack goes to the log");
    }

    [Test]
    public void Restart_TakesTheListenersFirst_AndStopsTheRunningDaemonOnlyOnceThePidFileIsOurs()
    {
        var daemon = new RecordingDaemon(_steps) { Options = { User = "nobody", LogFile = "/var/log/t.log", PidFile = "/run/t.pid" } };

        int exitCode = Execute(daemon, takeOver: true);

        Assert.That(exitCode, Is.EqualTo(ExitCodes.Success), _log.ToString());
        Assert.That(_steps, Is.EqualTo(new[]
        {
            "handle signals",
            "resolve identity nobody",
            "umask 022",
            "chdir /",
            "redirect streams to /var/log/t.log",
            "take the listeners of the daemon holding /run/t.pid",
            "startup hook",
            "rename a pid file naming us over /run/t.pid",
            "tell the running daemon to stop accepting",
            "wait for the running daemon to exit",
            "activation hook",
            "drop privileges to nobody",
            "publish pid",
            "run",
            "remove pid file",
        }));
        Assert.That(Readiness(), Is.EqualTo($"PROGRESS taking the pid file over\nPROGRESS committed\nPROGRESS waiting for the previous generation to exit\nREADY {Environment.ProcessId}\n"));
    }

    [Test]
    public void Restart_OfADaemonThatOverlaps_ActivatesWithoutWaitingForTheRunningOneToExit()
    {
        var daemon = new RecordingDaemon(_steps, overlap: true) { Options = { LogFile = "/var/log/t.log", PidFile = "/run/t.pid" } };

        int exitCode = Execute(daemon, takeOver: true);

        Assert.That(exitCode, Is.EqualTo(ExitCodes.Success), _log.ToString());
        Assert.That(_steps, Does.Not.Contain("wait for the running daemon to exit"));
        Assert.That(_steps.IndexOf("activation hook"), Is.EqualTo(_steps.IndexOf("tell the running daemon to stop accepting") + 1));
        Assert.That(Readiness(), Is.EqualTo($"PROGRESS taking the pid file over\nPROGRESS committed\nREADY {Environment.ProcessId}\n"), "committed: the launcher never kills it from here");
    }

    [Test]
    public void Restart_KillsARunningDaemonThatOutlivesTheStopTimeout_OnlyWithForce([Values] bool force)
    {
        var steps = new RecordingSteps(_steps) { PredecessorExitsAfterKillOnly = force };
        var daemon = new RecordingDaemon(_steps)
        {
            Options = { LogFile = "/var/log/t.log", PidFile = "/run/t.pid", StopTimeout = TimeSpan.FromMilliseconds(1), Force = force },
        };

        Task<int> execution = Task.Run(() => Execute(daemon, takeOver: true, steps: steps));

        if (force)
        {
            Assert.That(execution.Wait(TimeSpan.FromMinutes(1)), Is.True, "killed, it exits, and this generation goes on");
            Assert.That(execution.Result, Is.EqualTo(ExitCodes.Success), _log.ToString());
            Assert.That(_steps, Has.Member("kill the running daemon"));
            Assert.That(_log.ToString(), Does.Contain("warning: pid 4242 had not exited 2.001 s after the handover: killing it (SIGKILL, --force)"));
            Assert.That(_steps.IndexOf("kill the running daemon"), Is.LessThan(_steps.IndexOf("activation hook")));
        }
        else
        {
            // It waits on, saying so once, and a stop request ends the wait. Committed, it is the
            // service: stopped, it exits 0 (a unit ends inactive, not failed), and the restart that
            // started it hears why it did not finish.
            Assert.That(daemon.LateWarning.Wait(TimeSpan.FromMinutes(1)), Is.True, _log.ToString());
            steps.Stop!("SIGTERM");
            Assert.That(execution.Wait(TimeSpan.FromMinutes(1)), Is.True);
            Assert.That(execution.Result, Is.EqualTo(ExitCodes.Success), _log.ToString());
            Assert.That(_steps, Does.Not.Contain("kill the running daemon").And.Not.Contain("activation hook").And.Not.Contain("run"));
            Assert.That(_steps[^1], Is.EqualTo("remove pid file"));
            Assert.That(_log.ToString(), Does.Contain("warning: pid 4242 has not exited 2.001 s after the handover; the main loop still waits for it (restart --force kills it)"));
            Assert.That(daemon.Logged, Has.Member((LogSeverity.Information, "stopped by SIGTERM while waiting for the previous generation to exit; the main loop never began")));
            Assert.That(daemon.Logged[^1], Is.EqualTo((LogSeverity.Information, "stopped (exit 0)")));
            Assert.That(Readiness(), Does.EndWith("ERROR stopped by SIGTERM while waiting for the previous generation to exit; the main loop never began\n"));
        }
    }

    [Test]
    public void Start_LogsTheStartupFailureAndTheExit_AsErrors()
    {
        var daemon = new RecordingDaemon(_steps, failStartup: true) { Options = { LogFile = "/var/log/t.log", PidFile = "/run/t.pid" } };

        _ = Execute(daemon);

        Assert.That(daemon.Logged, Has.Member((LogSeverity.Error, "stopped (exit 1)")));
        Assert.That(daemon.Logged.Find(l => l.Message.StartsWith("startup failed: hook failed", StringComparison.Ordinal)).Severity, Is.EqualTo(LogSeverity.Error));
        Assert.That(_log.ToString(), Does.Contain($"t[{Environment.ProcessId}]: error: startup failed: hook failed\n"), "the severity follows the pid in the file");
    }

    [Test]
    public void Reload_LogsOneWarningLine_WhenOnReloadRefusesWithADaemonException()
    {
        var steps = new RecordingSteps(_steps);
        var daemon = new RecordingDaemon(_steps, reloadFailure: new DaemonException("configuration not reloaded: /etc/t.json: bad JSON"), signals: steps)
        {
            Options = { LogFile = "/var/log/t.log", PidFile = "/run/t.pid" },
        };

        Assert.That(Execute(daemon, steps: steps), Is.EqualTo(ExitCodes.Success), "a failed reload does not stop the daemon");

        string[] failed = Array.FindAll(_log.ToString().Split('\n'), l => l.Contains("reload failed", StringComparison.Ordinal));
        Assert.That(failed, Has.Length.EqualTo(1), _log.ToString());
        Assert.That(failed[0], Does.EndWith($"t[{Environment.ProcessId}]: warning: reload failed: configuration not reloaded: /etc/t.json: bad JSON"));
        Assert.That(_log.ToString(), Does.Not.Contain("\n   at "), "no stack trace");
        Assert.That(daemon.Logged, Has.Member((LogSeverity.Warning, "reload failed: configuration not reloaded: /etc/t.json: bad JSON")));
        Assert.That(daemon.Logged, Has.Member((LogSeverity.Information, "reloading (SIGHUP)")));
    }

    [Test]
    public void Reload_LogsTheStackTraceAsAnError_WhenOnReloadHasABug()
    {
        var steps = new RecordingSteps(_steps);
        var daemon = new RecordingDaemon(_steps, reloadFailure: new NullReferenceException("oops"), signals: steps)
        {
            Options = { LogFile = "/var/log/t.log", PidFile = "/run/t.pid" },
        };

        Assert.That(Execute(daemon, steps: steps), Is.EqualTo(ExitCodes.Success));

        (LogSeverity severity, string message) = daemon.Logged.Find(l => l.Message.StartsWith("reload failed", StringComparison.Ordinal));
        Assert.That(severity, Is.EqualTo(LogSeverity.Error));
        Assert.That(message, Does.StartWith("reload failed: System.NullReferenceException: oops").And.Contain(" at "), "the stack trace, for whoever fixes the bug");
    }

    [Test]
    public void Run_SaysReady_WithoutMentioningAPidFile_WhenItHasNone()
    {
        var daemon = new RecordingDaemon(_steps);

        int exitCode = daemon.CreateRuntime(background: false, steps: new RecordingSteps(_steps), logLines: _log).Execute(null);

        Assert.That(exitCode, Is.EqualTo(ExitCodes.Success), _log.ToString());
        Assert.That(daemon.Logged, Is.EqualTo(new[]
        {
            (LogSeverity.Information, "starting"),
            (LogSeverity.Information, "ready"),
            (LogSeverity.Information, "stopped (exit 0)"),
        }), "nothing that reads as an error, such as 'pid file none'");
    }

    [Test]
    public void Run_SaysOnce_WhenAnotherDaemonHoldsThePidFile()
    {
        var daemon = new RecordingDaemon(_steps) { Options = { PidFile = "/run/t.pid" } };
        var steps = new RecordingSteps(_steps) { Holder = 4242 };

        int exitCode = daemon.CreateRuntime(background: false, steps: steps, logLines: _log).Execute(null);

        Assert.That(exitCode, Is.EqualTo(ExitCodes.Failure));
        Assert.That(Integration.ExampleDaemon.Count(_log.ToString(), "already running"), Is.EqualTo(1), _log.ToString());
        Assert.That(daemon.Logged, Has.Member((LogSeverity.Error, "already running (pid 4242, pid file /run/t.pid)")));
        Assert.That(_steps, Does.Not.Contain("startup hook"));
    }

    private int Execute(DaemonBase daemon, bool takeOver = false, RecordingSteps? steps = null)
    {
        DaemonRuntime runtime = daemon.CreateRuntime(background: true, takeOver, steps ?? new RecordingSteps(_steps), _log);
        int writeEnd = _writeEnd;
        _writeEnd = -1; // the writer closes it
        return runtime.Execute(new ReadinessWriter(writeEnd));
    }

    /// <summary>Everything written to the readiness pipe (its write end is closed by then).</summary>
    private string Readiness()
    {
        var text = new StringBuilder();
        using var stream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(_readEnd, ownsHandle: true), FileAccess.Read);
        _readEnd = -1;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static DaemonSystem NoSystem() => new(null!, null!, null!, TextWriter.Null, TextWriter.Null, isRoot: true, home: null);

    /// <summary>
    /// Records its hooks in <paramref name="steps"/> and what it is told was logged in <see cref="Logged"/>;
    /// with <paramref name="reloadFailure"/>, its main loop raises a SIGHUP (through <paramref name="signals"/>)
    /// whose <c>OnReload</c> throws that.
    /// </summary>
    private sealed class RecordingDaemon(List<string> steps, bool failStartup = false, Exception? reloadFailure = null, RecordingSteps? signals = null, bool overlap = false)
        : DaemonBase("t", NoSystem())
    {
        public List<(LogSeverity Severity, string Message)> Logged { get; } = new();

        protected override bool OverlapOnRestart => overlap;

        protected override Task OnStartupAsync(CancellationToken cancellationToken)
        {
            steps.Add("startup hook");
            return failStartup ? throw new InvalidOperationException("hook failed") : Task.CompletedTask;
        }

        protected override Task OnActivateAsync(CancellationToken cancellationToken)
        {
            steps.Add("activation hook");
            return Task.CompletedTask;
        }

        protected override void Run(CancellationToken stoppingToken)
        {
            steps.Add("run");
            signals?.Reload?.Invoke();
        }

        protected override void OnReload()
        {
            if (reloadFailure is not null)
            {
                throw reloadFailure;
            }
        }

        /// <summary>Set once the runtime logged that the running daemon is late to exit.</summary>
        public ManualResetEventSlim LateWarning { get; } = new();

        protected override void OnLogged(LogSeverity severity, string message)
        {
            Logged.Add((severity, message));
            if (message.Contains("after the handover", StringComparison.Ordinal))
            {
                LateWarning.Set();
            }
        }
    }

    /// <summary>Its main loop ends once a reload reached <c>OnReload</c> (or after 30 s).</summary>
    private sealed class ReloadWaitingDaemon() : DaemonBase("t", NoSystem())
    {
        public ManualResetEventSlim Reloaded { get; } = new();

        protected override void Run(CancellationToken stoppingToken) => Reloaded.Wait(TimeSpan.FromSeconds(30), stoppingToken);

        protected override void OnReload() => Reloaded.Set();
    }

    private sealed class NoMainLoopDaemon() : DaemonBase("t", NoSystem());

    private sealed class RecordingSteps(List<string> steps) : IDaemonSteps
    {
        /// <summary>The daemon that holds the pid file, or 0 when it is free.</summary>
        public int Holder { get; init; }

        /// <summary>What a SIGHUP would call, once the signals are handled.</summary>
        public Action? Reload { get; private set; }

        /// <summary>What a SIGTERM would call, once the signals are handled.</summary>
        public Action<string>? Stop { get; private set; }

        /// <summary>Null: the running daemon exits at once. Else it exits only when killed (true) or never (false).</summary>
        public bool? PredecessorExitsAfterKillOnly { get; init; }

        public void HandleSignals(Action<string> stop, Action reload)
        {
            steps.Add("handle signals");
            Reload = reload;
            Stop = stop;
        }

        public Identity? ResolveIdentity(string? user, string? group)
        {
            steps.Add($"resolve identity {user}");
            return user is null ? null : new Identity(user, 65534, 65534, [65534]);
        }

        public void SetFileCreationMask(int umask) => steps.Add($"umask {Convert.ToString(umask, 8).PadLeft(3, '0')}");

        public void ChangeWorkingDirectory(string path) => steps.Add($"chdir {path}");

        public void RedirectStreams(DaemonLog log, string path) => steps.Add($"redirect streams to {path}");

        public IPidFile? LockPidFile(string path, out int holder)
        {
            steps.Add($"lock pid file {path}");
            holder = Holder;
            return Holder == 0 ? new RecordingPidFile(steps, path) : null;
        }

        public void DropPrivileges(DaemonLog log, Identity identity) => steps.Add($"drop privileges to {identity.User}");

        public IPredecessor ConnectToPredecessor(string path, ListenerSet into, uint? runsAs, TimeSpan timeout)
        {
            steps.Add($"take the listeners of the daemon holding {path}");
            return new RecordingPredecessor(steps, PredecessorExitsAfterKillOnly);
        }

        public IPidFile TakeOverPidFile(string path, int pid)
        {
            steps.Add($"rename a pid file naming {(pid == Environment.ProcessId ? "us" : pid)} over {path}");
            return new RecordingPidFile(steps, path);
        }
    }

    private sealed class RecordingPredecessor(List<string> steps, bool? exitsAfterKillOnly) : IPredecessor
    {
        private bool _killed;

        public int Pid => 4242;

        public bool Commit(int pid, IReadOnlyCollection<string> adopted, bool awaitRelease = false)
        {
            steps.Add("tell the running daemon to stop accepting");
            return true;
        }

        public bool WaitForExit(TimeSpan timeout)
        {
            if (exitsAfterKillOnly is null || _killed)
            {
                steps.Add("wait for the running daemon to exit");
                return true;
            }

            Thread.Sleep(timeout);
            return false;
        }

        public void Kill()
        {
            steps.Add("kill the running daemon");
            _killed = exitsAfterKillOnly == true;
        }

        public void Dispose()
        {
        }
    }

    private sealed class RecordingPidFile(List<string> steps, string path) : IPidFile
    {
        public string Path => path;

        public bool IsAtItsPath => true;

        public void Publish(int pid) => steps.Add("publish pid");

        public void Remove() => steps.Add("remove pid file");
    }
}
