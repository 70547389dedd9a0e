using System.Text.RegularExpressions;
using Mono.Unix.Native;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// Faults and hostile input: nothing lost, nobody killed by mistake. Each test is a row of
/// docs/RELIABILITY.md.
/// </summary>
[TestFixture]
[Category("Integration")]
[Parallelizable(ParallelScope.Self)]
public sealed class ReliabilityTests : DaemonFixture
{
    protected override string FolderLabel => "rel";

    // ---- hostile pid file content, in a pid namespace where kill(-1) or kill(0) would show -------

    private const string PidContentScript = """
        set -u
        EX="$1"; PIDF="$2"; LOG="$3"; PORT="$4"; CONTENT="$5"; LOCKED="$6"
        sleep 300 & s1=$!
        sleep 300 & s2=$!
        write() { if [ "$CONTENT" = SLEEPER ]; then printf '%s\n' "$s1" > "$PIDF"; else printf -- "$CONTENT" > "$PIDF"; fi; }
        write
        if [ "$LOCKED" = 1 ]; then
            python3 -c 'import fcntl,sys,time; f=open(sys.argv[1],"r+"); fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB); print("locked", flush=True); time.sleep(300)' "$PIDF" > "$PIDF.locked" &
            holder=$!
            for i in $(seq 500); do [ -s "$PIDF.locked" ] && break; sleep 0.01; done
        fi
        "$EX" status --pid-file "$PIDF"; echo "status=$?"
        "$EX" stop --pid-file "$PIDF"; echo "stop=$?"
        if [ -e "$PIDF" ]; then echo "file=kept"; else echo "file=removed"; write; fi
        "$EX" start --pid-file "$PIDF" --log-file "$LOG" --port "$PORT"; echo "start=$?"
        "$EX" stop --pid-file "$PIDF"; echo "stop2=$?"
        kill -0 $s1 && kill -0 $s2 && echo "sleepers=alive"
        if [ "$LOCKED" = 1 ]; then kill -0 $holder && echo "holder=alive"; fi
        """;

    private static readonly string[] _hostileLockedContents = { "abc\\n", "-1\\n", "0\\n", "99999999999999\\n", "12 34\\n", "123junk\\n", "SLEEPER" };

    private static readonly string[] _hostileContents = { "", "abc\\n", "-1\\n", "0\\n", "99999999999999\\n", "12 34\\n", "123junk\\n", "SLEEPER" };

    [Test]
    public void HostilePidFileContent_Unlocked_IsStale_AndNobodyIsSignalled([ValueSource(nameof(_hostileContents))] string content)
    {
        string output = RunInPidNamespace(content, locked: false);
        Assert.That(output, Does.Contain("status=1").And.Contain("stop=0").And.Contain("file=removed")
            .And.Contain("start=0").And.Contain("stop2=0").And.Contain("sleepers=alive"), output);
        Assert.That(output, Does.Contain("started (pid"), "start replaced the stale file");
    }

    [Test]
    public void HostilePidFileContent_Locked_IsNeverSignalled([ValueSource(nameof(_hostileLockedContents))] string content)
    {
        // Write-locked by a process the file does not name: no daemon, and nothing to signal or reuse.
        string output = RunInPidNamespace(content, locked: true);
        Assert.That(output, Does.Contain("status=4").And.Contain("stop=1").And.Contain("file=kept")
            .And.Contain("start=1").And.Contain("stop2=1").And.Contain("sleepers=alive").And.Contain("holder=alive"), output);
        Assert.That(output, Does.Contain("not signalling anything").And.Not.Contain("running (pid"), output);
        CommandAssertions.AssertNoStackTrace(output);
    }

    [Test]
    public void EmptyPidFile_WriteLockedByALiveProcess_IsADaemonStillStarting()
    {
        // The protocol: a daemon holds its file locked and empty until it is ready.
        string output = RunInPidNamespace("", locked: true);
        Assert.That(output, Does.Contain("starting (pid").And.Contain("status=150").And.Not.Contain("running (pid"), output);
        Assert.That(output, Does.Contain("sleepers=alive"), output);
        CommandAssertions.AssertNoStackTrace(output);
    }

    private string RunInPidNamespace(string content, bool locked)
    {
        TestEnvironment.RequireRoot();
        var args = new[]
        {
            "--pid", "--fork", "--kill-child", "--mount-proc", "/bin/bash", "-c", PidContentScript, "script",
            ExampleDaemon.Program, _daemon.PidFile, _daemon.LogFile, _daemon.Port.ToString(), content, locked ? "1" : "0",
        };
        CommandResult result = _daemon.Exec(args, null, "unshare");
        if (result.Error.Contains("unshare failed", StringComparison.Ordinal))
        {
            Assert.Ignore("unshare --pid is denied here: " + result.Error.Trim());
        }

        return result.Output + result.Error;
    }

    // ---- what stands at the pid file's path ------------------------------------------------------

    [Test]
    public void SymlinkAtThePidFilePath_IsNeverFollowed()
    {
        string victim = Path.Combine(_daemon.Folder, "victim");
        File.WriteAllText(victim, "precious\n");
        File.CreateSymbolicLink(_daemon.PidFile, victim);

        CommandResult started = _daemon.Run("start");
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"Daemon.Example: pid file {_daemon.PidFile} is a symbolic link; refusing to follow it\n"));
        Assert.That(File.ReadAllText(victim), Is.EqualTo("precious\n"), "the target is untouched");
        Assert.That(_daemon.Run("status").ExitCode, Is.EqualTo(4));
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(1));
        Assert.That(File.ReadAllText(victim), Is.EqualTo("precious\n"));
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    [Test]
    public void DanglingSymlinkAtThePidFilePath_CreatesNothing()
    {
        string target = Path.Combine(_daemon.Folder, "planted");
        File.CreateSymbolicLink(_daemon.PidFile, target);
        Assert.That(_daemon.Run("start").ExitCode, Is.EqualTo(1));
        Assert.That(File.Exists(target), Is.False);
    }

    [Test]
    public void FifoAtThePidFilePath_FailsWithoutHanging()
    {
        Assert.That(Syscall.mkfifo(_daemon.PidFile, FilePermissions.DEFFILEMODE), Is.EqualTo(0));
        var watch = Stopwatch.StartNew();
        CommandResult started = _daemon.Run("start");
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Does.EndWith("is not a regular file\n"));
        Assert.That(_daemon.Run("status").ExitCode, Is.EqualTo(4));
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(1));
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), "no hang (three commands; well under a second on an idle machine)");
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    [Test]
    public void DirectoryAtThePidFilePath_IsAClearError()
    {
        Directory.CreateDirectory(_daemon.PidFile);
        CommandResult started = _daemon.Run("start");
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"Daemon.Example: pid file {_daemon.PidFile} is a directory\n"));
        Assert.That(Directory.Exists(_daemon.PidFile), Is.True);
    }

    [Test]
    public void AnotherUsersPidFile_IsNeitherUsedNorRemoved()
    {
        TestEnvironment.RequireRoot();
        File.WriteAllText(_daemon.PidFile, "12345\n");
        Assert.That(Syscall.chown(_daemon.PidFile, 65534, 65534), Is.EqualTo(0));

        CommandResult started = _daemon.Run("start");
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"Daemon.Example: pid file {_daemon.PidFile} belongs to uid 65534; refusing to use it\n"));

        CommandResult stopped = _daemon.Run("stop");
        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
        Assert.That(stopped.Error, Does.Contain("belongs to uid 65534; leaving it"));
        Assert.That(File.ReadAllText(_daemon.PidFile), Is.EqualTo("12345\n"), "not clobbered");
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    // ---- folders and destinations ----------------------------------------------------------------

    /// <summary>The <c>install -d</c> option a missing folder's advice gives: none for root, who owns the files it makes.</summary>
    private static string Owner => Syscall.geteuid() == 0 ? "" : $"-o {Environment.UserName} ";

    [Test]
    public void PidFileInAMissingFolder_FailsAtStart_SayingWhatToDo()
    {
        string folder = Path.Combine(_daemon.Folder, "missing");
        string pid = Path.Combine(folder, "x.pid");
        CommandResult started = _daemon.Run("start", "--pid-file", pid);
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"Daemon.Example: cannot create pid file {pid}: the folder {folder} does not exist; create it (install -d {Owner}{folder}) or pass another --pid-file\n"));
        Assert.That(started.Output, Is.Empty);
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);

        string runLog = Path.Combine(_daemon.Folder, "run.log");
        CommandResult run = _daemon.Exec(new[] { "run", "--pid-file", pid, "--log-file", runLog, "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture) }, null);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error, Is.EqualTo(started.Error), "run says the same, once");
    }

    [Test]
    public void LogFileInAMissingFolder_FailsAtStart_LeavingNoPidFile()
    {
        string folder = Path.Combine(_daemon.Folder, "missing");
        string log = Path.Combine(folder, "x.log");
        CommandResult started = _daemon.Run("start", "--log-file", log);
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"Daemon.Example: cannot create log file {log}: the folder {folder} does not exist; create it (install -d {Owner}{folder}) or pass another --log-file\n"));
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    [TestCase("ro", "pid", "cannot open pid file {0}: Read-only file system", TestName = "PidFileOnAReadOnlyFileSystem_FailsAtStart")]
    [TestCase("ro", "log", "cannot open log file {0}: Read-only file system", TestName = "LogFileOnAReadOnlyFileSystem_FailsAtStart")]
    [TestCase("full", "log", "cannot write log file {0}: No space left on device", TestName = "LogFileOnAFullFileSystem_FailsAtStart")]
    public void UnwritableDestination_FailsAtStart(string kind, string which, string message)
    {
        TestEnvironment.RequireRoot();
        string mount = Path.Combine(_daemon.Folder, "mnt");
        Directory.CreateDirectory(mount);
        string target = Path.Combine(mount, which == "pid" ? "x.pid" : "x.log");
        string pid = which == "pid" ? target : _daemon.PidFile;
        string log = which == "log" ? target : _daemon.LogFile;
        string prepare = kind == "ro"
            ? $"mount -t tmpfs -o ro,size=64k tmpfs '{mount}'"
            : $"mount -t tmpfs -o size=16k tmpfs '{mount}' && : > '{target}' && (dd if=/dev/zero of='{mount}/fill' bs=4k 2>/dev/null || true)";
        string script = $"{prepare} || exit 99; '{ExampleDaemon.Program}' start --pid-file '{pid}' --log-file '{log}' --port {_daemon.Port}; echo \"start=$?\"; ls '{mount}'";
        CommandResult result = _daemon.Exec(new[] { "--mount", "--propagation", "private", "/bin/bash", "-c", script }, null, "unshare");
        if (result.ExitCode == 99 || result.Error.Contains("unshare failed", StringComparison.Ordinal))
        {
            Assert.Ignore("mounting a tmpfs is denied here: " + result.Error.Trim());
        }

        Assert.That(result.Output, Does.Contain("start=1"), result.ToString());
        Assert.That(result.Error, Is.EqualTo($"Daemon.Example: {string.Format(message, target)}\n"));
        Assert.That(File.Exists(_daemon.PidFile), Is.False, "no pid file left");
        Assert.That(result.Output, Does.Not.Contain("x.pid"), "no pid file left on the mount either");
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    // ---- races -----------------------------------------------------------------------------------

    [Test]
    public void EightStartsAtOnce_GiveOneDaemon()
    {
        var starts = Enumerable.Range(0, 8).Select(_ => Task.Run(() => _daemon.Run("start"))).ToArray();
        Task.WaitAll(starts);
        CommandResult[] results = starts.Select(t => t.Result).ToArray();

        Assert.That(results.Select(r => r.ExitCode), Is.All.EqualTo(0), string.Join("\n", results.Select(r => r.ToString())));
        int pid = _daemon.ReadPid();
        Assert.That(results.Count(r => r.Output.Trim() == $"started (pid {pid})"), Is.EqualTo(1), "exactly one started");
        Assert.That(results.Count(r => r.Output.Trim() == $"already running (pid {pid})"), Is.EqualTo(7), "the others name the winner");
        Assert.That(WaitForProcesses(1), Is.EqualTo(new[] { pid }));
    }

    [Test]
    public void StopAndStartRacing_LeaveAtMostOneDaemon_AndNoStaleFile()
    {
        _daemon.Start();
        for (int round = 0; round < 6; round++)
        {
            var stop = Task.Run(() => _daemon.Run("stop"));
            var start = Task.Run(() => _daemon.Run("start"));
            Task.WaitAll(stop, start);
            Assert.That(stop.Result.ExitCode, Is.EqualTo(0), stop.Result.ToString());
            Assert.That(start.Result.ExitCode, Is.EqualTo(0), start.Result.ToString());

            CommandResult status = _daemon.Run("status");
            Assert.That(status.ExitCode, Is.AnyOf(0, 3), "running or cleanly stopped, never a stale file: " + status);
            List<int> running = WaitForProcesses(status.ExitCode == 0 ? 1 : 0);
            Assert.That(running, Has.Count.EqualTo(status.ExitCode == 0 ? 1 : 0));
            if (status.ExitCode == 3)
            {
                _daemon.Start();
            }
        }
    }

    [Test]
    public void RestartInALoop_LeavesExactlyOneDaemon()
    {
        _daemon.Start();
        for (int i = 0; i < 50; i++)
        {
            CommandResult restarted = _daemon.Run("restart");
            Assert.That(restarted.ExitCode, Is.EqualTo(0), $"restart {i}: {restarted}");
        }

        int pid = _daemon.ReadPid();
        Assert.That(WaitForProcesses(1), Is.EqualTo(new[] { pid }));
        Assert.That(ExampleDaemon.FirstLine(_daemon.Run("status").Output), Is.EqualTo($"running (pid {pid})"));
        Assert.That(_daemon.Echo("still here"), Is.EqualTo("still here"));
    }

    // ---- processes killed at the wrong moment ------------------------------------------------------

    [Test]
    public void LauncherKilledWhileWaiting_LeavesNoDaemonBehind()
    {
        string fifo = _daemon.MakeFifo();
        using Process launcher = StartLauncher("--greeting-file", fifo);
        int daemon = _daemon.WaitForStartingDaemon();
        launcher.Kill();
        launcher.WaitForExit();

        File.WriteAllText(fifo, "hello\n");   // lets the startup hook finish
        Assert.That(ExampleDaemon.WaitUntilGone(daemon, TimeSpan.FromSeconds(10)), Is.True, "the daemon stops: nobody was told it runs");
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
        Assert.That(_daemon.Log, Does.Contain("the launcher went away before the daemon was ready"));
        _daemon.Start();
    }

    [Test]
    public void MiddleStageKilled_GivesAConsistentAnswer()
    {
        using Process launcher = StartLauncher();
        int middle = WaitForChild(launcher.Id);
        _ = Syscall.kill(middle, Signum.SIGKILL);
        launcher.WaitForExit(30_000);
        string error = launcher.StandardError.ReadToEnd();

        if (launcher.ExitCode == 0)
        {
            Assert.That(_daemon.Run("status").ExitCode, Is.EqualTo(0), "started means running");
            _daemon.Run("stop");
        }
        else
        {
            Assert.That(launcher.ExitCode, Is.EqualTo(1));
            Assert.That(error, Does.Contain("exited before it was ready"));
            Assert.That(WaitForProcesses(0), Is.Empty, "failed means nothing left");
        }

        Assert.That(File.Exists(_daemon.PidFile), Is.False);
        _daemon.Start();
    }

    [Test]
    public void SigtermDuringTheStartupHook_FailsStart_AndLeavesNothing()
    {
        string fifo = _daemon.MakeFifo();
        using Process launcher = StartLauncher("--greeting-file", fifo);
        int daemon = _daemon.WaitForStartingDaemon();
        Assert.That(Syscall.kill(daemon, Signum.SIGTERM), Is.EqualTo(0));
        Assert.That(_daemon.WaitForLog("stopping (SIGTERM)", TimeSpan.FromSeconds(30)), Is.True, _daemon.Log);
        File.WriteAllText(fifo, "hello\n");

        Assert.That(launcher.WaitForExit(30_000), Is.True);
        Assert.That(launcher.ExitCode, Is.EqualTo(1));
        Assert.That(launcher.StandardError.ReadToEnd(), Is.EqualTo("Daemon.Example: stopped by SIGTERM during startup\n"));
        Assert.That(ExampleDaemon.WaitUntilGone(daemon, TimeSpan.FromSeconds(5)), Is.True);
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
        _daemon.Start();
    }

    [Test]
    public void StartupSlowerThanTheReadyTimeout_IsKilled_AndStartFails()
    {
        string fifo = _daemon.MakeFifo();   // nobody writes: the startup hook blocks for good
        var watch = Stopwatch.StartNew();
        CommandResult started = _daemon.Run("start", "--greeting-file", fifo, "--ready-timeout", "1");
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"Daemon.Example: the daemon was not ready within 1 s and was killed (see {_daemon.LogFile})\n"));
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), "bounded: killed at its ready timeout, not left to hang");
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
        Assert.That(WaitForProcesses(0), Is.Empty);
    }

    [Test]
    public void ReadyTimeoutBeforeTheDaemonSaidItsPid_StillKillsIt([Range(1, 8)] int round)
    {
        // 10 ms: the deadline passes while the daemon's runtime is still starting, before it can
        // say its pid; the launcher must kill it all the same, and say so truthfully. Its startup
        // hook then blocks on a fifo nobody writes: a daemon left alive would stay.
        string fifo = _daemon.MakeFifo();
        CommandResult started = _daemon.Run("start", "--ready-timeout", "0.01", "--greeting-file", fifo);
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"Daemon.Example: the daemon was not ready within 0.01 s and was killed (see {_daemon.LogFile})\n"));
        Assert.That(WaitForProcesses(0), Is.Empty, "nothing lives on");
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
    }

    [Test]
    public void SecondStart_DuringTheFirstsStartupHook_WaitsForItAndSaysAlreadyRunning()
    {
        string fifo = _daemon.MakeFifo();
        using Process first = StartLauncher("--greeting-file", fifo);
        int daemon = _daemon.WaitForStartingDaemon();
        CommandResult status = _daemon.Run("status");
        Assert.That((status.ExitCode, status.Output), Is.EqualTo((150, $"starting (pid {daemon})\n")));

        using Process second = StartLauncher("--greeting-file", fifo);
        WaitUntilItWaitsForTheFirst(second);
        File.WriteAllText(fifo, "hello\n");

        Assert.That(first.WaitForExit(30_000) && second.WaitForExit(30_000), Is.True);
        Assert.That(first.StandardOutput.ReadToEnd(), Is.EqualTo($"started (pid {daemon})\n"));
        Assert.That((second.ExitCode, second.StandardOutput.ReadToEnd()), Is.EqualTo((0, $"already running (pid {daemon})\n")));
        Assert.That(ExampleDaemon.FirstLine(_daemon.Run("status").Output), Is.EqualTo($"running (pid {daemon})"));
    }

    [Test]
    public void SecondStart_DuringTheFirstsStartupHook_ReportsItsFailure_NotAlreadyRunning()
    {
        string fifo = _daemon.MakeFifo();
        using Process first = StartLauncher("--greeting-file", fifo);
        int daemon = _daemon.WaitForStartingDaemon();
        using Process second = StartLauncher("--greeting-file", fifo);
        WaitUntilItWaitsForTheFirst(second);

        Assert.That(Syscall.kill(daemon, Signum.SIGTERM), Is.EqualTo(0));   // the first start fails
        Assert.That(_daemon.WaitForLog("stopping (SIGTERM)", TimeSpan.FromSeconds(30)), Is.True, _daemon.Log);
        File.WriteAllText(fifo, "hello\n");

        Assert.That(first.WaitForExit(30_000) && second.WaitForExit(30_000), Is.True);
        Assert.That(first.ExitCode, Is.EqualTo(1));
        Assert.That(second.ExitCode, Is.EqualTo(1), "nothing runs, so the second start did not succeed either");
        Assert.That(second.StandardError.ReadToEnd(), Is.EqualTo($"Daemon.Example: pid {daemon}, started by another 'start', stopped before it was ready (see {_daemon.LogFile})\n"));
        Assert.That(_daemon.Run("status").ExitCode, Is.EqualTo(3));
    }

    [Test]
    public void StopOfAStaleFile_RacingStart_NeverNamesTheStopCommand()
    {
        // stop takes a brief lock on a stale file to remove it; start must not take that for a daemon.
        // Which of the two gets to the file first depends on the machine's speed: a stop that comes
        // after the start (or during its startup) rightly stops the new daemon, and says so.
        const string script = """
            set -u
            EX="$1"; shift
            for i in $(seq 60); do
                printf '999999\n' > "$PIDF"
                "$EX" stop "$@" > "$PIDF.stop" & s=$!
                out=$("$EX" start "$@" 2> "$PIDF.err"); rc=$?
                wait $s
                stopped=$(cat "$PIDF.stop"); err=$(cat "$PIDF.err")
                pid=$(cat "$PIDF" 2>/dev/null)
                case "$out" in
                    "started (pid $pid)"|"already running (pid $pid)") ;;
                    "started (pid "*")")
                        [ -z "$pid" ] && [ "$stopped" = "stopped ${out#started }" ] ||
                            echo "round $i: start said '$out' but the file names '$pid' and stop said '$stopped'" ;;
                    "")
                        [ -z "$pid" ] && [ "$err" = "Daemon.Example: stopped by SIGTERM during startup" ] && [ "${stopped#stopped (pid }" != "$stopped" ] ||
                            echo "round $i: start failed (exit $rc, '$err'), the file names '$pid' and stop said '$stopped'" ;;
                    *) echo "round $i: start said '$out' (exit $rc) but the file names '$pid'"; ;;
                esac
                # The bug itself: start taking stop's brief lock for a daemon and naming stop.
                named=${out##*(pid }; named=${named%)}
                [ -n "$out" ] && [ "$named" = "$s" ] && echo "round $i: start named the stop command ($s)"
                "$EX" stop "$@" > /dev/null || echo "round $i: stop failed"
            done
            echo done
            """;
        var environment = new Dictionary<string, string?> { ["PIDF"] = _daemon.PidFile };
        CommandResult result = _daemon.Exec(new[] { "-c", script, "race", ExampleDaemon.Program }.Concat(_daemon.CommonOptions), environment, "/bin/bash", timeout: TimeSpan.FromMinutes(10));
        Assert.That(result.Output, Is.EqualTo("done\n"), result.ToString());
        Assert.That(WaitForProcesses(0), Is.Empty);
    }

    [Test]
    public void SignalStorm_WhileRunExits_StillEndsWithExitZero([Range(1, 5)] int round)
    {
        using Process run = _daemon.StartForeground();
        string stderr = "";
        var reader = System.Threading.Tasks.Task.Run(() => stderr = run.StandardError.ReadToEnd());
        var signals = new[] { Signum.SIGTERM, Signum.SIGHUP, Signum.SIGINT, Signum.SIGQUIT };
        for (int i = 0; ExampleDaemon.IsAlive(run.Id) && i < 100_000; i++)
        {
            _ = Syscall.kill(run.Id, signals[i % signals.Length]);
        }

        Assert.That(run.WaitForExit(30_000), Is.True);
        reader.Wait(30_000);
        Assert.That(run.ExitCode, Is.EqualTo(0), "no late signal took its default action: " + stderr);
        Assert.That(stderr, Does.Contain("stopped (exit 0)"));
    }

    [Test]
    public void StoppedDaemon_SIGSTOP_IsStoppedAllTheSame()
    {
        int pid = _daemon.Start();
        Assert.That(Syscall.kill(pid, Signum.SIGSTOP), Is.EqualTo(0));
        Assert.That(ExampleDaemon.Eventually(() => ExampleDaemon.State(pid) == 'T'), Is.True);

        CommandResult stopped = _daemon.Run("stop", "--stop-timeout", "30");
        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
        Assert.That(stopped.Output, Is.EqualTo($"stopped (pid {pid})\n"));
        Assert.That(_daemon.Log, Does.Contain("stopped (exit 0)"));
    }

    [Test]
    public void Restart_OfADaemonThatOutlivesItsStopTimeout_LeavesTheNewOneWaiting_AndSaysWhatToDo()
    {
        // A daemon whose main loop ignores the stop request: the next generation took over, and
        // begins only once the old one has exited, never beside it.
        string[] common = KeepFdDaemon();
        int old = StartIgnoringStop(common);

        CommandResult restarted = _daemon.Exec(common.Concat(new[] { "restart", "--stop-timeout", "0.5", "--ready-timeout", "8" }), null, "dotnet");

        int next = _daemon.ReadPid();
        Assert.That(next, Is.Not.EqualTo(old), "the pid file names the generation that took over");
        Assert.That(restarted.Output, Is.Empty, restarted.ToString());
        Assert.That(restarted.AssertOneClearLine(1, _daemon.Log), Is.EqualTo(
            $"keepfd: restart incomplete: pid {next} took over from pid {old} but is not ready: not ready within 10.5 s of the handover (see {_daemon.LogFile}); if pid {old} is still there, it begins once it has exited (kill -KILL {old})"));
        Assert.That(ExampleDaemon.IsAlive(old) && ExampleDaemon.IsAlive(next), Is.True, "neither was killed from the terminal");
        Assert.That(_daemon.Log, Does.Contain($"keepfd[{next}]: warning: pid {old} has not exited 2.5 s after the handover; the main loop still waits for it (restart --force kills it)"));
        Assert.That(_daemon.Log, Does.Not.Contain($"keepfd[{next}]: ready"));

        _ = Syscall.kill(old, Signum.SIGKILL);
        Assert.That(_daemon.WaitForLog($"keepfd[{next}]: ready"), Is.True, "it goes on once the old one is gone:\n" + _daemon.Log);
        Assert.That(_daemon.Exec(common.Append("status"), null, "dotnet").ExitCode, Is.EqualTo(0));
        Assert.That(_daemon.Exec(common.Append("stop"), null, "dotnet").ExitCode, Is.EqualTo(0));
    }

    [Test]
    public void RestartWithForce_KillsADaemonThatOutlivesItsStopTimeout_ThenTheNewOneBegins()
    {
        string[] common = KeepFdDaemon();
        int old = StartIgnoringStop(common);

        CommandResult restarted = _daemon.Exec(common.Concat(new[] { "restart", "--stop-timeout", "0.5", "--force" }), null, "dotnet");

        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString() + "\n" + _daemon.Log);
        int next = _daemon.ReadPid();
        Assert.That(restarted.Output, Is.EqualTo($"restarted (pid {next}; pid {old} handed over and exited)\n"));
        Assert.That(ExampleDaemon.WaitUntilGone(old, TimeSpan.FromSeconds(30)), Is.True);
        Assert.That(_daemon.Log, Does.Contain($"keepfd[{next}]: warning: pid {old} had not exited 2.5 s after the handover: killing it (SIGKILL, --force)"));
        Assert.That(_daemon.Exec(common.Append("stop"), null, "dotnet").ExitCode, Is.EqualTo(0));
    }

    /// <summary>Starts the test assembly's daemon with a main loop that ignores the stop request; its pid.</summary>
    private int StartIgnoringStop(string[] common)
    {
        CommandResult started = _daemon.Exec(common.Append("start").Append("--ignore-stop"), null, "dotnet");
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        return _daemon.ReadPid();
    }

    /// <summary>The test assembly's own daemon (see TestDaemonProgram), with this test's files.</summary>
    private string[] KeepFdDaemon() =>
        [Path.Combine(AppContext.BaseDirectory, "Daemon.Core.Tests.dll"), "keep-fd-daemon", "--pid-file", _daemon.PidFile, "--log-file", _daemon.LogFile];

    [Test]
    public void NumericUserAndGroup_AreAccepted()
    {
        TestEnvironment.RequireRoot();
        int pid = _daemon.Start("--user", "65534", "--group", "65534");
        Assert.That(ExampleDaemon.StatusField(pid, "Uid"), Does.StartWith("65534\t65534"));
        Assert.That(ExampleDaemon.StatusField(pid, "Gid"), Does.StartWith("65534\t65534"));
        Assert.That(_daemon.Echo("numeric"), Is.EqualTo("numeric"));
    }

    [Test]
    public void UnknownNumericUser_IsRefusedBeforeAnythingStarts()
    {
        TestEnvironment.RequireRoot();
        CommandResult started = _daemon.Run("start", "--user", "4000000");
        Assert.That(started.ExitCode, Is.EqualTo(1));
        Assert.That(started.Error, Is.EqualTo("Daemon.Example: unknown user '4000000'\n"));
        Assert.That(WaitForProcesses(0), Is.Empty);
    }

    [Test]
    public void IgnoredSignalsOfTheLauncher_AreResetInTheDaemon()
    {
        // What nohup and "cmd &" in a script do: the daemon must still answer reload and stop.
        string options = _daemon.QuotedCommonOptions;
        CommandResult started = _daemon.Exec(new[] { "-c", $"trap '' HUP INT QUIT; exec '{ExampleDaemon.Program}' start {options}" }, null, "/bin/bash");
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        int pid = _daemon.ReadPid();

        ulong ignored = Convert.ToUInt64(ExampleDaemon.StatusField(pid, "SigIgn"), 16);
        Assert.That(ignored & 0b111, Is.EqualTo(0UL), "SIGHUP, SIGINT and SIGQUIT are no longer ignored");
        Assert.That(_daemon.Run("reload").ExitCode, Is.EqualTo(0));
        Assert.That(_daemon.WaitForLog("reloading (SIGHUP)"), Is.True, _daemon.Log);
        Assert.That(Syscall.kill(pid, Signum.SIGINT), Is.EqualTo(0));
        Assert.That(ExampleDaemon.WaitUntilGone(pid, TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(_daemon.WaitForLog("stopping (SIGINT)"), Is.True, _daemon.Log);
    }

    // ---- faults in the daemon's own code -----------------------------------------------------------

    [Test]
    public void StartupHookThrows_StartFails_WithTheReasonAndTheStackInTheLog()
    {
        CommandResult started = _daemon.Run("start", "--simulate-fault", "startup-throws");
        Assert.That(started.ExitCode, Is.EqualTo(1));
        Assert.That(started.Error, Is.EqualTo("Daemon.Example: startup failed: simulated startup fault\n"));
        Assert.That(_daemon.Log, Does.Contain("System.InvalidOperationException: simulated startup fault").And.Contain(" at "));
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
        Assert.That(WaitForProcesses(0), Is.Empty);
    }

    [Test]
    public void RunThrows_IsLogged_StatusSaysDead_AndTheNextStartCleansUp()
    {
        CommandResult started = _daemon.Run("start", "--simulate-fault", "run-throws");
        Assert.That(started.ExitCode, Is.EqualTo(0), "it was ready before its main loop failed");
        int pid = int.Parse(started.Output.Split("pid ")[1].TrimEnd(')', '\n'));
        Assert.That(ExampleDaemon.WaitUntilGone(pid, TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(_daemon.WaitForLog("stopped (exit 1)"), Is.True, _daemon.Log);
        Assert.That(_daemon.Log, Does.Contain($"Daemon.Example[{pid}]: error: unhandled exception: System.InvalidOperationException: simulated fault in the main loop").And.Contain(" at "));
        CommandResult status = _daemon.Run("status");
        Assert.That(status.ExitCode, Is.EqualTo(1), "dead, pid file left: not 'never started' " + status);
        Assert.That(status.Output, Is.EqualTo($"not running, but pid file {_daemon.PidFile} is left (it names \"{pid}\"): it died or was killed; see {_daemon.LogFile}\n"));
        int next = _daemon.Start();
        Assert.That(next, Is.Not.EqualTo(pid), "start replaces the dead daemon's file");
        Assert.That(_daemon.Run("stop").Output, Is.EqualTo($"stopped (pid {next})\n"));
        Assert.That(File.Exists(_daemon.PidFile), Is.False, "a clean stop still removes the file");
    }

    [Test]
    public void RunIgnoresCancellation_StopFails_ThenStopForceKillsIt()
    {
        int pid = _daemon.Start("--simulate-fault", "ignore-stop");
        var watch = Stopwatch.StartNew();
        CommandResult stopped = _daemon.Run("stop", "--stop-timeout", "1");
        Assert.That(stopped.ExitCode, Is.EqualTo(1), stopped.ToString());
        Assert.That(stopped.Error, Is.EqualTo($"Daemon.Example: pid {pid} did not stop within 1 s (stop --force sends SIGKILL)\n"));
        Assert.That(ExampleDaemon.IsAlive(pid), Is.True);

        CommandResult forced = _daemon.Run("stop", "--stop-timeout", "1", "--force");
        Assert.That(forced.ExitCode, Is.EqualTo(0), forced.ToString());
        Assert.That(forced.Output, Is.EqualTo($"killed (pid {pid}) after 1 s\n"));
        Assert.That(_daemon.Log, Does.Contain($"Daemon.Example[{pid}]: warning: killed (SIGKILL) by 'stop --force' after 1 s\n"), "the log does not end at 'stopping (SIGTERM)'");
        Assert.That(ExampleDaemon.IsAlive(pid), Is.False);
        Assert.That(File.Exists(_daemon.PidFile), Is.False, "stop removes the file the killed daemon left");
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), "no hang (about 3 s on an idle machine)");
    }

    // ---- descriptors -------------------------------------------------------------------------------

    [TestCase(3)]
    [TestCase(9)]
    public void DescriptorFromTheShell_IsClosedInTheDaemon(int fd)
    {
        string inherited = Path.Combine(_daemon.Folder, $"inherited-{fd}.txt");
        string options = _daemon.QuotedCommonOptions;
        CommandResult started = _daemon.Exec(new[] { "-c", $"exec {fd}>'{inherited}'; exec '{ExampleDaemon.Program}' start {options}" }, null, "/bin/bash");
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        int pid = _daemon.ReadPid();

        var targets = Directory.GetFileSystemEntries($"/proc/{pid}/fd").Select(f => new FileInfo(f).LinkTarget ?? "").ToList();
        Assert.That(targets, Has.None.EqualTo(inherited));
        Assert.That(targets.Count(t => t == _daemon.PidFile), Is.EqualTo(1), "the lock is held");
        // A thread the runtime starts names itself through /proc/PID/task/TID/comm, open for a moment.
        Assert.That(targets.Distinct().Where(t => t.StartsWith('/') && !t.StartsWith("/usr/", StringComparison.Ordinal) && !t.StartsWith(AppContext.BaseDirectory, StringComparison.Ordinal)
                && !Regex.IsMatch(t, $@"^/proc/{pid}/task/\d+/comm$")),
            Is.SubsetOf(new[] { "/dev/null", "/dev/urandom", _daemon.LogFile, _daemon.PidFile, "/memfd:doublemapper (deleted)" }),
            "no file but its own, the runtime's and /dev/null");
    }

    // ---- under load ----------------------------------------------------------------------------------

    [Test]
    public void StopUnderLoad_EchoesWhatClientsSentBeforeClosing()
    {
        const int Clients = 200;
        _daemon.Start();
        var clients = new ClientSockets(_daemon.Port, Clients, receiveTimeoutMilliseconds: 15_000);
        try
        {
            Assert.That(_daemon.Echo("warm"), Is.EqualTo("warm"));
            for (int i = 0; i < Clients; i++)
            {
                clients[i].Send(Encoding.ASCII.GetBytes($"client-{i}\n"));
            }

            var watch = Stopwatch.StartNew();
            CommandResult stopped = _daemon.Run("stop");
            Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
            Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), "no hang: exit 0 already says it stopped within its timeout");

            for (int i = 0; i < Clients; i++)
            {
                Assert.That(ExampleDaemon.ReadToEnd(clients[i]), Is.EqualTo($"client-{i}\n"), $"client {i} got its echo, then end of stream");
            }
        }
        finally
        {
            clients.Dispose();
        }
    }

    [Test]
    public void RestartUnderLoad_FinishesWithinTheTimeout()
    {
        int first = _daemon.Start();
        var clients = new ClientSockets(_daemon.Port, 100);
        try
        {
            // The next generation takes the listener over at once; the old one serves its 100 idle
            // clients until half its stop timeout has passed, then exits cleanly by itself.
            CommandResult restarted = _daemon.Run("restart", "--stop-timeout", "10");
            Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
            Assert.That(restarted.Output, Is.EqualTo($"restarted (pid {_daemon.ReadPid()}; pid {first} hands over and drains)\n"));
            Assert.That(_daemon.WaitForLog($"[{first}]: stopped (exit 0)", TimeSpan.FromSeconds(60)), Is.True, "after draining its clients: " + _daemon.Log);
            Assert.That(_daemon.Echo("after restart"), Is.EqualTo("after restart"));
        }
        finally
        {
            clients.Dispose();
        }
    }

    // ---- helpers -------------------------------------------------------------------------------------

    private Process StartLauncher(params string[] extra) => _daemon.Launch(new[] { "start" }.Concat(_daemon.CommonOptions).Concat(extra));

    /// <summary>
    /// Waits until a second <c>start</c> waits for the first one's daemon: it holds a pidfd on it
    /// (on a slow machine it may look at the pid file only after the first one has failed, and a
    /// signal sent before that would test nothing).
    /// </summary>
    private static void WaitUntilItWaitsForTheFirst(Process second)
    {
        bool waiting = ExampleDaemon.Eventually(
            () => !second.HasExited && HoldsAPidfd(second.Id),
            TimeSpan.FromSeconds(30));
        Assert.That(waiting, Is.True, "the second start waits for the first one's outcome, holding a pidfd on its daemon");
    }

    private static bool HoldsAPidfd(int pid)
    {
        try
        {
            return Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Any(fd => new FileInfo(fd).LinkTarget == "anon_inode:[pidfd]");
        }
        catch (IOException)
        {
            return false;   // it exited, or a descriptor closed while we looked
        }
    }

    private int WaitForChild(int parent)
    {
        string path = $"/proc/{parent}/task/{parent}/children";
        string children = "";
        if (!ExampleDaemon.Eventually(() => (children = File.Exists(path) ? File.ReadAllText(path).Trim() : "").Length > 0, TimeSpan.FromSeconds(20), pollMilliseconds: 1))
        {
            throw new AssertionException("the launcher started no stage");
        }

        int child = int.Parse(children.Split(' ')[0]);
        _daemon.Track(child);
        return child;
    }

    /// <summary>The processes of this test once the count settles (exited ones linger as zombies briefly).</summary>
    private List<int> WaitForProcesses(int expected)
    {
        List<int> found = new();
        ExampleDaemon.Eventually(() => (found = _daemon.ProcessesOfThisTest()).Count == expected, TimeSpan.FromSeconds(5));
        return found;
    }
}
