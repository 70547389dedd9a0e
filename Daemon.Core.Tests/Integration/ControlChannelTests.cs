using Daemon.Handover;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// The control channel of a zero-downtime restart under attack and faults (issue 19): a second
/// local user (<c>nobody</c>, through runuser) who asks for the listeners, squats the channel's
/// names and floods it; a stopped predecessor; restarts and stops at once; the handover window.
/// Each test is a row of docs/RELIABILITY.md.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class ControlChannelTests : DaemonFixture
{
    /// <summary>
    /// What any local user can do: list the daemon channels in /proc/net/unix (world-readable),
    /// and talk to each. argv[1]: take | squat | flood; then the mode's arguments.
    /// </summary>
    private const string Attacker = """
        import os, socket, sys, time
        def channels():
            prefix = "@" + os.environ["PREFIX"]
            found = []
            with open("/proc/net/unix") as f:
                for line in f.read().splitlines()[1:]:
                    x = line.split()
                    if len(x) >= 8 and x[7].startswith(prefix) and int(x[3], 16) & 0x10000 and int(x[4], 16) == 5:
                        found.append(x[7][1:])
            return found
        mode = sys.argv[1]
        if mode == "take":
            for name in channels():
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect("\0" + name)
                try:
                    s.send(b"HANDOVER 60000")
                except BrokenPipeError:
                    pass  # answered and closed before it could ask: the answer is still there to read
                data, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(64 * 4))
                fds = sum(len(d) // 4 for level, kind, d in anc)
                print(data.decode(), "fds:", fds, flush=True)
                try:
                    s.send(f"COMMITTED {os.getpid()}\necho".encode())
                    s.send(b"DONE")
                except OSError:
                    pass
                s.close()
        elif mode == "squat":
            held = []
            for name in sys.argv[2:]:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.bind("\0" + name); s.listen(1)
                held.append(s)
            print("ready", flush=True)
            sys.stdin.read()
        elif mode == "flood":
            n = int(sys.argv[2]); done = 0
            for i in range(n):
                for name in channels():
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                    try:
                        s.connect("\0" + name); s.send(b"HANDOVER"); done += 1
                    except OSError:
                        pass
                    s.close()
            print("connections:", done, flush=True)
        """;

    private string _attacker = null!;

    [SetUp]
    public void WriteTheAttacker()
    {
        _attacker = Path.Combine(_daemon.Folder, "attacker.py");
        File.WriteAllText(_attacker, Attacker);
    }

    protected override ExampleDaemon CreateDaemon() => CreateDaemonNobodyCanReach("control");

    [TestCase(true, TestName = "ADaemonThatDroppedToNobody_HandsItsListenersToNoNobodyProcess")]
    [TestCase(false, TestName = "ARootDaemon_HandsItsListenersToNoNobodyProcess")]
    public void AnotherUser_GetsNoListener_AndTheDaemonServesOn(bool dropToNobody)
    {
        string[] user = dropToNobody ? ["--user", "nobody"] : [];
        int pid = _daemon.Start(user);

        CommandResult attack = AsNobody("take");
        Assert.That(attack.Output, Is.EqualTo("REFUSED uid 65534 may not restart this daemon fds: 0\n"), attack.ToString());

        Assert.That(ExampleDaemon.IsAlive(pid), Is.True, "the daemon did not hand over");
        Assert.That(_daemon.ReadPid(), Is.EqualTo(pid));
        Assert.That(_daemon.Echo("still mine"), Is.EqualTo("still mine"));
        Assert.That(_daemon.WaitForLog(log => log.Contains("control socket: refused a connection from uid 65534, pid ", StringComparison.Ordinal) && log.Contains(": only root may restart this daemon", StringComparison.Ordinal)), Is.True, _daemon.Log);
        Assert.That(_daemon.Log, Does.Not.Contain("handing"));

        CommandResult restarted = _daemon.Run("restart", user);
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        Assert.That(restarted.Output, Is.EqualTo($"restarted (pid {_daemon.ReadPid()}; pid {pid} hands over and drains)\n"), "root still may");
    }

    [Test]
    public void ADaemonThatKeptItsUser_IsRestartedByThatUser()
    {
        // The same user that started a daemon that never changed user may restart it: its own.
        string program = TestEnvironment.CopyForAnotherUser(ExampleDaemon.Program, _daemon.Folder);
        string own = Path.Combine(_daemon.Folder, "nobody");
        Directory.CreateDirectory(own);
        Assert.That(Mono.Unix.Native.Syscall.chown(own, 65534, 65534), Is.EqualTo(0));
        string[] options = ["--pid-file", Path.Combine(own, "d.pid"), "--log-file", Path.Combine(own, "d.log"), "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture)];
        CommandResult started = _daemon.ExecAsNobody(new[] { program, "start" }.Concat(options));
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        int pid = int.Parse(File.ReadAllText(Path.Combine(own, "d.pid")).Trim(), CultureInfo.InvariantCulture);

        CommandResult restarted = _daemon.ExecAsNobody(new[] { program, "restart" }.Concat(options));
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        Assert.That(restarted.Output, Does.StartWith("restarted (pid ").And.EndWith($"; pid {pid} hands over and drains)\n"));
        Assert.That(_daemon.Echo("its own"), Is.EqualTo("its own"));
        Assert.That(_daemon.Exec(new[] { "stop" }.Concat(options), null).ExitCode, Is.EqualTo(0), "root stops it");
    }

    [Test]
    public void TheDaemonUser_CannotMakeStatusCallTheLogDeleted_ByItsName()
    {
        string logs = Path.Combine(_daemon.Folder, "logs");
        Directory.CreateDirectory(logs);
        Assert.That(Mono.Unix.Native.Syscall.chown(logs, 65534, 65534), Is.EqualTo(0));
        string log = Path.Combine(logs, "app.log");
        int pid = _daemon.Start("--user", "nobody", "--log-file", log);

        // The daemon's user owns the folder: it may rename the open log to look like a removed file.
        string renamed = Path.Combine(logs, "x (deleted)");
        CommandResult moved = _daemon.Exec(new[] { "-u", "nobody", "--", "/bin/mv", log, renamed }, null, "/usr/sbin/runuser");
        Assert.That(moved.ExitCode, Is.EqualTo(0), moved.ToString());

        CommandResult status = _daemon.Run("status", "--log-file", log);
        Assert.That(status.Output, Does.Contain($"  log file {renamed}\n").And.Not.Contain("still written"), status.ToString());
        Assert.That(ExampleDaemon.FirstLine(status.Output), Is.EqualTo($"running (pid {pid})"));
    }

    [Test]
    public void SquattedControlNames_BlockNeitherStartNorRestart()
    {
        // Every name an attacker can predict: the old fixed one, and names of the channel's prefix.
        string prefix = ControlChannel.Prefix(_daemon.PidFile);
        string[] squatted = ["daemon.net:" + _daemon.PidFile, prefix + new string('0', 32), prefix + "x", prefix];
        Squat(squatted);

        int pid = _daemon.Start();
        string[] freed = Channels().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Except(squatted).ToArray();
        Assert.That(freed, Has.Length.EqualTo(1), "the daemon's own channel, beside the squatted ones");
        CommandResult restarted = _daemon.Run("restart");
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        int next = _daemon.ReadPid();
        Assert.That(restarted.Output, Is.EqualTo($"restarted (pid {next}; pid {pid} hands over and drains)\n"));

        // The moment a restart frees a channel, its name is the attacker's to take: the next one is another.
        Squat(freed);
        CommandResult again = _daemon.Run("restart");
        Assert.That(again.ExitCode, Is.EqualTo(0), again.ToString());
        Assert.That(again.Output, Is.EqualTo($"restarted (pid {_daemon.ReadPid()}; pid {next} hands over and drains)\n"));
        Assert.That(_daemon.Echo("served"), Is.EqualTo("served"));
    }

    [Test]
    public void AFloodOfRefusedConnections_GrowsTheLogByOneLine_AndDelaysNoRestart()
    {
        int pid = _daemon.Start("--user", "nobody");
        long before = new FileInfo(_daemon.LogFile).Length;
        Process flood = LaunchAsNobody("flood", "2000");

        CommandResult restarted = _daemon.Run("restart", "--user", "nobody", "--ready-timeout", "20");
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        int next = _daemon.ReadPid();
        Assert.That(next, Is.Not.EqualTo(pid));

        CommandResult flooded = _daemon.Finish(flood, TimeSpan.FromMinutes(3));
        Assert.That(flooded.Output, Does.StartWith("connections: "), flooded.ToString());
        string log = File.ReadAllText(_daemon.LogFile)[(int)before..];
        int lines = ExampleDaemon.Count(log, "control socket: refused a connection");
        Assert.That(lines, Is.LessThanOrEqualTo(2), "one line per generation, then counted: " + log[..Math.Min(log.Length, 2000)]);
        Assert.That(log.Length, Is.LessThan(16 * 1024), "the flood did not flood the log");
    }

    [Test]
    public void Restart_OfAStoppedDaemon_EndsByTheReadyTimeout_StoppingAndStartingIt()
    {
        int pid = _daemon.Start();
        Assert.That(Mono.Unix.Native.Syscall.kill(pid, Mono.Unix.Native.Signum.SIGSTOP), Is.EqualTo(0));
        Assert.That(ExampleDaemon.Eventually(() => ExampleDaemon.State(pid) == 'T'), Is.True);

        CommandResult restarted = _daemon.Run("restart", "--ready-timeout", "6");
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        Assert.That(restarted.Output, Does.StartWith($"pid {pid} did not answer on its control socket within 6 s (stopped or hung): stopping it, then starting\nstopped (pid {pid})\nstarted (pid "), restarted.ToString());
        Assert.That(ExampleDaemon.IsAlive(pid), Is.False);
        Assert.That(_daemon.Echo("new"), Is.EqualTo("new"));
    }

    [Test]
    public void FiveRestartsAtOnce_EachHandsOver_RefusingNoConnection()
    {
        _daemon.Start();
        using var load = ClientLoad.Echo(_daemon.Port, clients: 4);
        Assert.That(load.WaitForSuccesses(20), Is.True, load.ToString());
        for (int round = 0; round < 3; round++)
        {
            Process[] restarts = Enumerable.Range(0, 5).Select(_ => _daemon.Launch(new[] { "restart" }.Concat(_daemon.CommonOptions))).ToArray();
            foreach (Process restart in restarts)
            {
                using (restart)
                {
                    CommandResult result = _daemon.Finish(restart, TimeSpan.FromMinutes(2));
                    Assert.That(result.Output + result.Error, Does.Not.Contain("stopping it").And.Not.Contain("stopped (pid"), "never a stop: " + result);
                    Assert.That(result.ExitCode == 0 ? result.Output.StartsWith("restarted (pid ", StringComparison.Ordinal) : result.Error.Count(c => c == '\n') == 1, Is.True, result.ToString());
                }
            }

            Assert.That(load.WaitForSuccesses(20), Is.True, load.ToString());
        }

        load.Stop();
        Assert.That(load.Failures, Is.Empty, load.ToString());
        Assert.That(ExampleDaemon.Eventually(() => _daemon.ProcessesOfThisTest().Count == 1, TimeSpan.FromSeconds(60)), Is.True, "old generations drain and exit");
    }

    [Test]
    public void RestartAndStopAtOnce_LeaveNothingRunning_UnlessTheRestartCameSecond()
    {
        for (int round = 0; round < 10; round++)
        {
            _daemon.Start();
            using Process restart = _daemon.Launch(new[] { "restart" }.Concat(_daemon.CommonOptions));
            using Process stop = _daemon.Launch(new[] { "stop" }.Concat(_daemon.CommonOptions));
            CommandResult stopped = _daemon.Finish(stop);
            CommandResult restarted = _daemon.Finish(restart);
            string said = $"round {round}: stop said '{stopped.Output.Trim()}', restart said '{(restarted.Output + restarted.Error).Trim()}'";
            Assert.That(stopped.ExitCode, Is.EqualTo(0), said);
            Assert.That(stopped.Output, Does.StartWith("stopped (pid "), said);
            if (restarted.Output.Contains("started (pid ", StringComparison.Ordinal) && !restarted.Output.StartsWith("restarted", StringComparison.Ordinal))
            {
                // The stop was over before the restart looked: restart then started one, as it says.
                Assert.That(restarted.ExitCode, Is.EqualTo(0), said);
                Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));
            }
            else
            {
                // Whichever generation ended up serving was stopped: a handover that won is followed.
                Assert.That(restarted.ExitCode == 0 || restarted.Error.StartsWith("Daemon.Example: restart failed, ", StringComparison.Ordinal), Is.True, said);
            }

            Assert.That(ExampleDaemon.Eventually(() => _daemon.ProcessesOfThisTest().Count == 0, TimeSpan.FromSeconds(60)), Is.True, $"{said}, yet {string.Join(",", _daemon.ProcessesOfThisTest())} run");
            Assert.That(_daemon.Run("status").ExitCode, Is.EqualTo(3), said);
        }
    }

    [Test]
    public void OldGenerationKilledInTheHandoverWindow_TheNewOneServesOn()
    {
        (int old, Process restart, string fifo) = _daemon.RestartBlockedInItsStartupHook();
        using Process launcher = restart;
        Assert.That(Mono.Unix.Native.Syscall.kill(old, Mono.Unix.Native.Signum.SIGKILL), Is.EqualTo(0));
        Assert.That(ExampleDaemon.WaitUntilGone(old, TimeSpan.FromSeconds(30)), Is.True);
        File.WriteAllText(fifo, "hello\n");

        CommandResult restarted = _daemon.Finish(restart);
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        int next = _daemon.ReadPid();
        Assert.That(_daemon.Log, Does.Contain($"pid {old} exited during the handover; this daemon serves on"));
        Assert.That(ExampleDaemon.FirstLine(_daemon.Run("status").Output), Is.EqualTo($"running (pid {next})"));
        Assert.That(Answers("still served"), Is.True);
    }

    [Test]
    public void OldGenerationStoppedPastTheTimeout_ResumesServing_AndHandsOverToNoDeadPid()
    {
        (int old, Process restart, string fifo) = _daemon.RestartBlockedInItsStartupHook("--ready-timeout", "10");
        using Process launcher = restart;
        Assert.That(Mono.Unix.Native.Syscall.kill(old, Mono.Unix.Native.Signum.SIGSTOP), Is.EqualTo(0));
        Assert.That(ExampleDaemon.Eventually(() => ExampleDaemon.State(old) == 'T'), Is.True);
        File.WriteAllText(fifo, "hello\n");

        CommandResult restarted = _daemon.Finish(restart, TimeSpan.FromMinutes(2));
        Assert.That(restarted.ExitCode, Is.EqualTo(1), restarted.ToString());
        Assert.That(restarted.Error, Does.Contain($"pid {old} did not answer during the handover"), restarted.ToString());
        Assert.That(_daemon.ProcessesOfThisTest(), Is.EqualTo(new[] { old }), "the new generation is gone");

        Assert.That(Mono.Unix.Native.Syscall.kill(old, Mono.Unix.Native.Signum.SIGCONT), Is.EqualTo(0));
        Assert.That(ExampleDaemon.Eventually(() => ExampleDaemon.FirstLine(_daemon.Run("status").Output) == $"running (pid {old})", TimeSpan.FromSeconds(30)), Is.True, _daemon.Log);
        Assert.That(ExampleDaemon.IsAlive(old), Is.True, "it did not hand over to a dead pid");
        Assert.That(Answers("back"), Is.True);
        Assert.That(_daemon.Log, Does.Not.Contain($"Daemon.Example[{old}]: stopping (handed over"));
    }

    [Test]
    public void NewGenerationKilledBeforeItsRename_LeavesNoFreshFile_AndTheOldOneServesOn()
    {
        string strace = TestEnvironment.RequireTool("/usr/bin/strace");
        int old = _daemon.Start();

        // The kernel kills whichever process of the restart first renames: the new generation,
        // renaming its fresh pid file (NAME.new) over the path.
        CommandResult restarted = _daemon.Exec(
            new[] { "-f", "-o", "/dev/null", "-e", "trace=rename,renameat,renameat2", "-e", "inject=rename,renameat,renameat2:signal=SIGKILL", _daemon.ProgramPath, "restart" }.Concat(_daemon.CommonOptions),
            null,
            strace);
        Assert.That(restarted.ExitCode, Is.EqualTo(1), restarted.ToString());
        Assert.That(restarted.Error, Does.StartWith($"Daemon.Example: restart failed, pid {old} still runs and keeps its listeners: "), restarted.ToString());
        Assert.That(File.Exists(_daemon.PidFile + ".new"), Is.False, "NAME.new does not outlive its creator");
        Assert.That(ExampleDaemon.FirstLine(_daemon.Run("status").Output), Is.EqualTo($"running (pid {old})"));
        Assert.That(_daemon.Echo("old"), Is.EqualTo("old"));
    }

    [Test]
    public void RestartWithAnotherPort_TheOldPortIsDrainedAsAtStop_NotLeftToTheSuccessor()
    {
        // The same port: the successor adopts the listener, and the old generation leaves its queue.
        int first = _daemon.Start();
        CommandResult same = _daemon.Run("restart");
        Assert.That(same.ExitCode, Is.EqualTo(0), same.ToString());
        Assert.That(ExampleDaemon.WaitUntilGone(first, TimeSpan.FromSeconds(60)), Is.True);
        Assert.That(_daemon.Log, Does.Contain($"[{first}]: handed over: the next generation accepts from here"));

        // Another port: the successor adopts nothing, so the old port is the old generation's alone
        // and is drained as at stop (before, it was left as if handed over, and its queue reset).
        int second = _daemon.ReadPid();
        int newPort = ExampleDaemon.FreePort();
        CommandResult moved = _daemon.Exec(new[] { "restart", "--pid-file", _daemon.PidFile, "--log-file", _daemon.LogFile, "--port", newPort.ToString(CultureInfo.InvariantCulture) }, null);
        Assert.That(moved.ExitCode, Is.EqualTo(0), moved.ToString());
        Assert.That(ExampleDaemon.WaitUntilGone(second, TimeSpan.FromSeconds(60)), Is.True, _daemon.Log);
        Assert.That(_daemon.Log, Does.Not.Contain($"[{second}]: handed over: the next generation accepts from here").And.Contain($"[{second}]: stopped accepting"));
        Assert.That(_daemon.Log, Does.Contain($"[{second}]: stopping (handed over to pid {_daemon.ReadPid()})"));
    }

    [Test]
    public void SamePidFilePath_InAnotherMountNamespace_EachDaemonRestartsByHandover()
    {
        TestEnvironment.RequireTool("/usr/bin/unshare");
        TestEnvironment.RequireTool("/usr/bin/nsenter");
        string shared = Path.Combine(_daemon.Folder, "run");
        Directory.CreateDirectory(shared);
        string pidFile = Path.Combine(shared, "d.pid");
        string[] here = ["--pid-file", pidFile, "--log-file", Path.Combine(_daemon.Folder, "here.log"), "--port", ExampleDaemon.FreePort().ToString(CultureInfo.InvariantCulture)];
        string[] there = ["--pid-file", pidFile, "--log-file", Path.Combine(_daemon.Folder, "there.log"), "--port", ExampleDaemon.FreePort().ToString(CultureInfo.InvariantCulture)];

        // A container on the host's network: its own /run (a tmpfs over the same path), another daemon.
        CommandResult inside = _daemon.Exec(new[] { "-m", "--propagation", "private", "/bin/sh", "-c", "mount -t tmpfs none \"$1\" && shift && exec \"$@\"", "sh", shared, _daemon.ProgramPath, "start" }.Concat(there), null, "/usr/bin/unshare");
        Assert.That(inside.ExitCode, Is.EqualTo(0), inside.ToString());
        int container = int.Parse(inside.Output.Split("pid ")[1].TrimEnd(')', '\n'), CultureInfo.InvariantCulture);
        CommandResult startedHere = _daemon.Exec(new[] { "start" }.Concat(here), null);
        Assert.That(startedHere.ExitCode, Is.EqualTo(0), startedHere.ToString());
        int host = int.Parse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture);

        CommandResult restartedHere = _daemon.Exec(new[] { "restart" }.Concat(here), null);
        Assert.That(restartedHere.Output, Does.Contain($"pid {host} hands over and drains"), restartedHere.ToString());
        CommandResult restartedThere = _daemon.Exec(new[] { "-t", container.ToString(CultureInfo.InvariantCulture), "-m", _daemon.ProgramPath, "restart" }.Concat(there), null, "/usr/bin/nsenter");
        Assert.That(restartedThere.Output, Does.Contain($"pid {container} hands over and drains"), restartedThere.ToString());

        foreach (string[] options in new[] { here })
        {
            Assert.That(_daemon.Exec(new[] { "stop" }.Concat(options), null).ExitCode, Is.EqualTo(0));
        }

        int containerNow = int.Parse(restartedThere.Output.Split("restarted (pid ")[1].Split(';')[0], CultureInfo.InvariantCulture);
        CommandResult stoppedThere = _daemon.Exec(new[] { "-t", containerNow.ToString(CultureInfo.InvariantCulture), "-m", _daemon.ProgramPath, "stop" }.Concat(there), null, "/usr/bin/nsenter");
        Assert.That(stoppedThere.ExitCode, Is.EqualTo(0), stoppedThere.ToString());
    }

    [Test]
    public void APidFileReachedThroughASymlinkedFolder_RestartsByHandover()
    {
        string real = Path.Combine(_daemon.Folder, "real");
        string link = Path.Combine(_daemon.Folder, "link");
        Directory.CreateDirectory(real);
        File.CreateSymbolicLink(link, real);
        string[] log = ["--log-file", _daemon.LogFile, "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture)];

        CommandResult started = _daemon.Exec(new[] { "start", "--pid-file", Path.Combine(real, "d.pid") }.Concat(log), null);
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        CommandResult restarted = _daemon.Exec(new[] { "restart", "--pid-file", Path.Combine(link, "d.pid") }.Concat(log), null);
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        Assert.That(restarted.Output, Does.StartWith("restarted (pid ").And.Contain(" hands over and drains)"), "a handover, not a stop and start");
        Assert.That(_daemon.Exec(new[] { "stop", "--pid-file", Path.Combine(real, "d.pid") }.Concat(log), null).ExitCode, Is.EqualTo(0));
    }

    // ---- helpers ---------------------------------------------------------------------------------

    /// <summary>True when the echo server answers <paramref name="text"/> (after a greeting, if it has one).</summary>
    private bool Answers(string text)
    {
        using var client = new TcpClient();
        client.Connect(IPAddress.Loopback, _daemon.Port);
        using NetworkStream stream = client.GetStream();
        stream.ReadTimeout = 30_000;
        stream.Write(Encoding.ASCII.GetBytes(text + "\n"));
        string received = "";
        while (!received.Contains(text + "\n", StringComparison.Ordinal))
        {
            string more = Lines.ReadLine(stream);
            if (more.Length == 0)
            {
                return false;
            }

            received += more;
        }

        return true;
    }

    // Only this test's daemon is attacked: the machine may run other daemons (other tests' too).
    private CommandResult AsNobody(params string[] args) => _daemon.ExecAsNobody(AttackerRuns(args));

    private Process LaunchAsNobody(params string[] args) => _daemon.LaunchAsNobody(AttackerRuns(args));

    private IEnumerable<string> AttackerRuns(string[] args) =>
        new[] { "/usr/bin/env", "PREFIX=" + ControlChannel.Prefix(_daemon.PidFile), "python3", _attacker }.Concat(args);

    /// <summary>Binds <paramref name="names"/> as nobody, listening and never accepting, until the test ends.</summary>
    private void Squat(params string[] names)
    {
        Process squatter = _daemon.HoldAsNobody(new[] { "python3", _attacker, "squat" }.Concat(names));
        Assert.That(squatter.StandardOutput.ReadLine(), Is.EqualTo("ready"), () => squatter.StandardError.ReadToEnd());
    }

    /// <summary>The daemon channels listed in /proc/net/unix, as anyone sees them.</summary>
    private static IEnumerable<string> Channels() =>
        File.ReadLines("/proc/net/unix").Skip(1)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 8 && f[7].StartsWith("@daemon.net:", StringComparison.Ordinal))
            .Select(f => f[7][1..]);
}
