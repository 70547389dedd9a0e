using Mono.Unix.Native;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// Zero-downtime restart with the real example: the running daemon hands its listener to the next
/// generation, which takes the pid file over; only then does the old one stop accepting.
/// </summary>
[TestFixture]
[Category("Integration")]
[Parallelizable(ParallelScope.Self)]
public sealed class HandoverTests : DaemonFixture
{
    protected override string FolderLabel => "handover";

    [Test]
    public void Restart_UnderLoad_RefusesNoConnection_AndCutsNoEcho()
    {
        int first = _daemon.Start();
        using var load = ClientLoad.Echo(_daemon.Port, clients: 4);

        var pids = new List<int> { first };
        for (int i = 0; i < 3; i++)
        {
            Assert.That(load.WaitForSuccesses(20), Is.True, "the load runs before each restart: " + load);
            CommandResult restarted = _daemon.Run("restart");
            Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
            Assert.That(restarted.Output, Does.StartWith("restarted (pid ").And.Contain($"pid {pids[^1]} hands over and drains"));
            pids.Add(_daemon.ReadPid());
        }

        Assert.That(load.WaitForSuccesses(20), Is.True, "and after: " + load);
        load.Stop();
        Assert.That(load.Failures, Is.Empty, $"{load.Failures.Count} failures, {load.Successes} echoes");
        Assert.That(pids.Distinct().Count(), Is.EqualTo(4), "each restart is a new generation");
        foreach (int old in pids.Take(3))
        {
            Assert.That(ExampleDaemon.WaitUntilGone(old, TimeSpan.FromSeconds(30)), Is.True, $"pid {old} drained and exited");
        }

        Assert.That(ExampleDaemon.FirstLine(_daemon.Run("status").Output), Is.EqualTo($"running (pid {pids[^1]})"));
    }

    [Test]
    public void OpenConnection_IsServedAcrossRestart_ByTheOldGeneration()
    {
        int old = _daemon.Start();
        using var client = new EchoClient(_daemon.Port);
        Assert.That(client.Echo("before"), Is.EqualTo("before"));

        Assert.That(_daemon.Run("restart").ExitCode, Is.EqualTo(0));
        int next = _daemon.ReadPid();
        Assert.That(next, Is.Not.EqualTo(old));

        Assert.That(client.Echo("across the restart"), Is.EqualTo("across the restart"), "the old generation still serves its open connection");
        Assert.That(ExampleDaemon.IsAlive(old), Is.True);
        Assert.That(_daemon.Echo("a new connection"), Is.EqualTo("a new connection"));
        Assert.That(_daemon.WaitForLog($"Daemon.Example[{next}]: connection "), Is.True, "new connections go to the new generation");

        client.Dispose();
        Assert.That(ExampleDaemon.WaitUntilGone(old, TimeSpan.FromSeconds(30)), Is.True, "the old generation exits once its last client closed");
        Assert.That(_daemon.Log, Does.Contain($"Daemon.Example[{old}]: stopped (exit 0)"));
        Assert.That(File.ReadAllText(_daemon.PidFile), Is.EqualTo($"{next}\n"), "the old generation left the new pid file alone");
    }

    [Test]
    public void SilentConnection_IsAnsweredByTheOldGenerationAfterRestart_AndOneSilentPastTheDrainDeadlineIsClosed()
    {
        // The drain deadline is half the stop timeout after the stop request: 15 s here, for the
        // restart's end and the answered client's turn on a busy machine.
        _daemon.ExtraOptions.AddRange(new[] { "--stop-timeout", "30" });
        int old = _daemon.Start();
        using var answered = new EchoClient(_daemon.Port);
        Assert.That(answered.Echo("before"), Is.EqualTo("before"));
        using var silent = new EchoClient(_daemon.Port);
        Assert.That(silent.Echo("before"), Is.EqualTo("before"));

        CommandResult restarted = _daemon.Run("restart");
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        Assert.That(_daemon.WaitForLog($"Daemon.Example[{old}]: handed over: the next generation accepts from here"), Is.True, _daemon.Log);

        // Quiet across the restart, and for longer than any idle cut-off: still open, and answered.
        Assert.That(answered.Socket.Poll(1_000_000, SelectMode.SelectRead), Is.False, "no end-of-file for a quiet client after a handover\n" + _daemon.Log);
        Assert.That(answered.Echo("sent after the restart"), Is.EqualTo("sent after the restart"), "the old generation answers its connection");
        Assert.That(ExampleDaemon.IsAlive(old), Is.True);
        answered.Dispose();

        // Silent past the deadline: the old generation closes it, then exits.
        silent.Socket.ReceiveTimeout = 60_000;
        Assert.That(ExampleDaemon.ReadToEnd(silent.Socket), Is.Empty, "end-of-file at the drain deadline");
        Assert.That(_daemon.WaitForLog($"Daemon.Example[{old}]: warning: drain deadline: closing the 1 connection(s) still open"), Is.True, _daemon.Log);
        Assert.That(ExampleDaemon.WaitUntilGone(old, TimeSpan.FromSeconds(30)), Is.True, "the old generation exits after its deadline");
        Assert.That(_daemon.Log, Does.Contain($"Daemon.Example[{old}]: stopped (exit 0)"));
    }

    [Test]
    public void RestartWithAnotherPort_ListensOnTheNewPort_NotOnTheHandedOverOne()
    {
        int old = _daemon.Start();
        int port = ExampleDaemon.FreePort();

        CommandResult restarted = _daemon.Run("restart", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        int next = _daemon.ReadPid();
        Assert.That(_daemon.Log, Does.Contain($"Daemon.Example[{next}]: 'echo' was handed over bound to 127.0.0.1:{_daemon.Port}, not 127.0.0.1:{port}: listening there instead"));
        using (var client = new EchoClient(port))
        {
            Assert.That(client.Echo("on the new port"), Is.EqualTo("on the new port"));
        }

        Assert.That(ExampleDaemon.WaitUntilGone(old, TimeSpan.FromSeconds(30)), Is.True, "the old generation drains and exits");
        using var refused = new TcpClient();
        Assert.That(() => refused.Connect(IPAddress.Loopback, _daemon.Port), Throws.InstanceOf<SocketException>(), "nothing listens on the old port any more");
    }

    [Test]
    public void FailedRestart_RollsBack_TheRunningDaemonKeepsServingAndItsPidFile()
    {
        int old = _daemon.Start();
        using var load = ClientLoad.Echo(_daemon.Port, clients: 4);
        Assert.That(load.WaitForSuccesses(20), Is.True, load.ToString());

        CommandResult restarted = _daemon.Run("restart", "--simulate-fault", "startup-throws");
        Assert.That(restarted.ExitCode, Is.EqualTo(1), restarted.ToString());
        Assert.That(restarted.Error, Is.EqualTo($"Daemon.Example: restart failed, pid {old} still runs and keeps its listeners: startup failed: simulated startup fault\n"));

        Assert.That(load.WaitForSuccesses(20), Is.True, load.ToString());
        load.Stop();
        Assert.That(load.Failures, Is.Empty, "a failed restart refuses nothing either");
        Assert.That(ExampleDaemon.FirstLine(_daemon.Run("status").Output), Is.EqualTo($"running (pid {old})"));
        Assert.That(_daemon.Log, Does.Contain($"Daemon.Example[{old}]: warning: handover to pid "));
        Assert.That(_daemon.ProcessesOfThisTest(), Is.EquivalentTo(new[] { old }), "the failed generation is gone");

        Assert.That(_daemon.Run("restart").ExitCode, Is.EqualTo(0), "a later restart still hands over");
    }

    [Test]
    public void Restart_RunsTheProgramFileAsItIsOnDiskNow()
    {
        // A copy of the example's folder, whose program file is then replaced (a new inode), as a deploy does.
        string deployed = Path.Combine(_daemon.Folder, "app");
        CopyFolder(AppContext.BaseDirectory, deployed);
        string program = Path.Combine(deployed, "Daemon.Example");
        _daemon.ProgramPath = program;
        int old = _daemon.Start();
        Assert.That(Syscall.stat($"/proc/{old}/exe", out Stat original), Is.EqualTo(0));

        File.Copy(program, program + ".new");
        Assert.That(Syscall.chmod(program + ".new", FilePermissions.ACCESSPERMS), Is.EqualTo(0));
        File.Move(program + ".new", program, overwrite: true);
        Assert.That(Syscall.stat(program, out Stat replaced), Is.EqualTo(0));

        Assert.That(_daemon.Run("restart").ExitCode, Is.EqualTo(0));
        int next = _daemon.ReadPid();
        Assert.That(Syscall.stat($"/proc/{next}/exe", out Stat running), Is.EqualTo(0));
        Assert.That(replaced.st_ino, Is.Not.EqualTo(original.st_ino), "the deploy put a new file at the path");
        Assert.That(running.st_ino, Is.EqualTo(replaced.st_ino), "the new generation runs the file now at the path");
        Assert.That(_daemon.Echo("new binary"), Is.EqualTo("new binary"));
    }

    [Test]
    public void TwoRestartsAtOnce_EachExitsClearly_AndOneDaemonIsLeft()
    {
        _daemon.Start();
        using Process a = _daemon.Launch(new[] { "restart" }.Concat(_daemon.CommonOptions));
        using Process b = _daemon.Launch(new[] { "restart" }.Concat(_daemon.CommonOptions));
        var results = new[] { a, b }.Select(p =>
        {
            CommandResult result = _daemon.Finish(p);
            return (result.ExitCode, output: result.Output + result.Error);
        }).ToList();

        Assert.That(results.Count(r => r.ExitCode == 0), Is.GreaterThanOrEqualTo(1), string.Join(" | ", results));
        foreach ((int exitCode, string output) in results)
        {
            Assert.That(exitCode == 0 ? output.StartsWith("restarted (pid ", StringComparison.Ordinal) : output.StartsWith("Daemon.Example: restart failed", StringComparison.Ordinal), Is.True, output);
            Assert.That(output.TrimEnd('\n'), Does.Not.Contain("\n").Or.StartsWith("pid "), "one line each: " + output);
        }

        int running = _daemon.ReadPid();
        Assert.That(ExampleDaemon.FirstLine(_daemon.Run("status").Output), Is.EqualTo($"running (pid {running})"));
        Assert.That(ExampleDaemon.Eventually(() => _daemon.ProcessesOfThisTest().Count == 1, TimeSpan.FromSeconds(30)), Is.True, "old generations drain and exit: " + string.Join(",", _daemon.ProcessesOfThisTest()));
        Assert.That(_daemon.Echo("one"), Is.EqualTo("one"));
    }

    [Test]
    public void StopDuringAHandover_LeavesNothingRunning_AndRestartSaysSo()
    {
        (int old, Process restart, string fifo) = _daemon.RestartBlockedInItsStartupHook();
        using Process launcher = restart;

        CommandResult stopped = _daemon.Run("stop");
        Assert.That(stopped.Output, Is.EqualTo($"stopped (pid {old})\n"), stopped.ToString());
        File.WriteAllText(fifo, "hello\n");   // the new generation's startup hook goes on

        Assert.That(restart.WaitForExit(60_000), Is.True);
        Assert.That(restart.ExitCode, Is.EqualTo(1));
        Assert.That(restart.StandardError.ReadToEnd(), Does.StartWith($"Daemon.Example: restart failed, pid {old} is no longer running (it was stopped meanwhile): pid {old} "), "says the restart failed, and why");
        Assert.That(ExampleDaemon.Eventually(() => _daemon.ProcessesOfThisTest().Count == 0, TimeSpan.FromSeconds(30)), Is.True, "stop wins: nothing runs");
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
        Assert.That(_daemon.Run("status").ExitCode, Is.EqualTo(3));
    }

    [Test]
    public void LauncherKilledDuringAHandover_LeavesNoOrphanGeneration()
    {
        (int old, Process restart, string fifo) = _daemon.RestartBlockedInItsStartupHook();
        using Process launcher = restart;
        restart.Kill();
        restart.WaitForExit();
        File.WriteAllText(fifo, "hello\n");

        Assert.That(ExampleDaemon.Eventually(() => _daemon.ProcessesOfThisTest().SequenceEqual(new[] { old }), TimeSpan.FromSeconds(30)), Is.True, "only the old generation is left: " + string.Join(",", _daemon.ProcessesOfThisTest()));
        Assert.That(_daemon.Log, Does.Contain("the launcher went away before the daemon was ready"));
        Assert.That(ExampleDaemon.FirstLine(_daemon.Run("status").Output), Is.EqualTo($"running (pid {old})"));
        Assert.That(_daemon.Echo("still here"), Is.EqualTo("still here"));
    }

    [Test]
    public void WebExample_RestartUnderHttpLoad_FailsNoRequest()
    {
        // Kestrel, run by HostedDaemon, listening on the socket the daemon hands over.
        // Built into its own folder: ASP.NET Core's shared framework would change what the test
        // folder's other examples load.
        string program = ExampleDaemon.BuiltProgram("Daemon.Example.Web", "Daemon.Example.Web");
        Assert.That(File.Exists(program), Is.True, $"{program} is built before the tests (a reference of the test project)");

        using var web = new ExampleDaemon(program, "handover-web", takesPort: true);
        int first = web.Start();
        // A new connection for every request: each one is a connect the restart could refuse.
        using (var load = new HttpLoad(web.Port, newConnectionClients: 4, keepAliveClients: 0, bodyStart: "hello from pid "))
        {
            for (int i = 0; i < 2; i++)
            {
                Assert.That(load.WaitForMore(20), Is.True, "requests are served: " + load);
                CommandResult restarted = web.Run("restart");
                Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
                Assert.That(restarted.Output, Does.StartWith("restarted (pid "));
            }

            Assert.That(load.WaitForMore(20), Is.True, "and after: " + load);
            load.Stop();
            Assert.That(load.Failures, Is.Empty, load.ToString());
        }

        Assert.That(web.ReadPid(), Is.Not.EqualTo(first));
        Assert.That(web.Run("stop").ExitCode, Is.EqualTo(0));
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
        {
            string target = Path.Combine(to, Path.GetFileName(file));
            File.Copy(file, target);
            if (Syscall.stat(file, out Stat stat) == 0)
            {
                _ = Syscall.chmod(target, stat.st_mode & FilePermissions.ACCESSPERMS);
            }
        }

        foreach (string folder in Directory.GetDirectories(from))
        {
            CopyFolder(folder, Path.Combine(to, Path.GetFileName(folder)));
        }
    }
}
