using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Daemon.Commands;
using Daemon.Handover;
using Daemon.Launching;
using Daemon.Logging;
using Daemon.Runtime;
using Daemon.Security;
using Mono.Unix.Native;
using NUnit.Framework;

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
            "drop privileges to nobody",
            "publish pid",
            "run",
            "remove pid file",
        }));
        Assert.That(Readiness(), Is.EqualTo($"PID {Environment.ProcessId}\nREADY {Environment.ProcessId}\n"), "READY after the pid is in the file");
    }

    [Test]
    public void Start_FailsBeforeAnyStep_WhenTheSubclassHasNoMainLoop()
    {
        var daemon = new NoMainLoopDaemon();

        int exitCode = Execute(daemon);

        Assert.That(exitCode, Is.EqualTo(ExitCodes.Failure));
        Assert.That(_steps, Is.Empty, "nothing was opened or locked");
        Assert.That(Readiness(), Is.EqualTo($"PID {Environment.ProcessId}\nERROR NoMainLoopDaemon overrides neither Run nor RunAsync: it has no main loop\n"));
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
            "drop privileges to nobody",
            "tell the running daemon to stop accepting",
            "publish pid",
            "run",
            "remove pid file",
        }));
        Assert.That(Readiness(), Is.EqualTo($"PID {Environment.ProcessId}\nPROGRESS taking the pid file over\nREADY {Environment.ProcessId}\n"));
    }

    private int Execute(DaemonBase daemon, bool takeOver = false)
    {
        var runtime = new DaemonRuntime(daemon, background: true, new RecordingSteps(_steps), _log) { TakeOver = takeOver };
        return runtime.Execute(new ReadinessWriter(_writeEnd));
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

    private sealed class RecordingDaemon(List<string> steps, bool failStartup = false) : DaemonBase("t", NoSystem())
    {
        protected override Task OnStartupAsync(CancellationToken cancellationToken)
        {
            steps.Add("startup hook");
            return failStartup ? throw new InvalidOperationException("hook failed") : Task.CompletedTask;
        }

        protected override void Run(CancellationToken stoppingToken) => steps.Add("run");
    }

    private sealed class NoMainLoopDaemon() : DaemonBase("t", NoSystem());

    private sealed class RecordingSteps(List<string> steps) : IDaemonSteps
    {
        public void HandleSignals(Action<string> stop, Action reload) => steps.Add("handle signals");

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
            holder = 0;
            return new RecordingPidFile(steps, path);
        }

        public void DropPrivileges(DaemonLog log, Identity identity) => steps.Add($"drop privileges to {identity.User}");

        public IPredecessor? ConnectToPredecessor(string path, ListenerSet into)
        {
            steps.Add($"take the listeners of the daemon holding {path}");
            return new RecordingPredecessor(steps);
        }

        public IPidFile TakeOverPidFile(string path, int pid)
        {
            steps.Add($"rename a pid file naming {(pid == Environment.ProcessId ? "us" : pid)} over {path}");
            return new RecordingPidFile(steps, path);
        }
    }

    private sealed class RecordingPredecessor(List<string> steps) : IPredecessor
    {
        public int Pid => 4242;

        public void Commit(int pid) => steps.Add("tell the running daemon to stop accepting");

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
