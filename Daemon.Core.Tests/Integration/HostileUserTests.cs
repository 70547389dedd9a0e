using Mono.Unix.Native;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// A second local user (<c>nobody</c>, through runuser) attacks a daemon that root runs: through
/// its log path, its pid file's lock, the stage markers and hostile paths. Each test is a row of
/// docs/RELIABILITY.md.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class HostileUserTests : DaemonFixture
{
    protected override ExampleDaemon CreateDaemon() => CreateDaemonNobodyCanReach("hostile");

    // ---- 1. the log path ------------------------------------------------------------------------

    [TestCase(true, TestName = "LogSymlinkPlantedByTheDaemonUser_IsRefused_WithUser_AndItsTargetStaysRoots")]
    [TestCase(false, TestName = "LogSymlinkPlantedByTheDaemonUser_IsRefused_ForARootDaemon")]
    public void LogSymlink_IsRefused(bool dropToNobody)
    {
        string target = Secret();
        string logs = FolderOwnedByNobody();
        string log = Path.Combine(logs, "app.log");
        AsNobody("ln -s \"$1\" \"$2\"", target, log);

        CommandResult started = dropToNobody ? _daemon.Run("start", "--log-file", log, "--user", "nobody") : _daemon.Run("start", "--log-file", log);
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"Daemon.Example: log file {log} is a symbolic link; refusing to follow it\n"));
        AssertUntouched(target);
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    [Test]
    public void LogHardLink_IsRefused_AndItsTwinUntouched()
    {
        string target = Secret();
        string log = Path.Combine(_daemon.Folder, "app.log");
        Assert.That(Syscall.link(target, log), Is.EqualTo(0));

        CommandResult started = _daemon.Run("start", "--log-file", log, "--user", "nobody");
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"Daemon.Example: log file {log} has 2 hard links; refusing to use it\n"));
        AssertUntouched(target);
    }

    [Test]
    public void LogSymlinkPlantedAfterRotation_IsRefusedAtReload_AndTheDaemonKeepsItsOldLog()
    {
        string target = Secret();
        string logs = FolderOwnedByNobody();
        string log = Path.Combine(logs, "app.log");
        _daemon.Start("--log-file", log, "--user", "nobody");
        Assert.That(TestEnvironment.Owner(log), Is.EqualTo(65534u), "a log the daemon created is handed to its user");

        AsNobody("mv \"$2\" \"$2.1\" && ln -s \"$1\" \"$2\"", target, log);
        Assert.That(_daemon.Run("reload", "--log-file", log).ExitCode, Is.EqualTo(0));
        Assert.That(ExampleDaemon.Eventually(() => File.ReadAllText(log + ".1").Contains("reloaded (no greeting file)", StringComparison.Ordinal)), Is.True);

        string old = File.ReadAllText(log + ".1");
        Assert.That(old, Does.Contain($"reload: log file {log} is a symbolic link; refusing to follow it; still writing to the old log"));
        AssertUntouched(target);
        Assert.That(_daemon.Echo("still serving"), Is.EqualTo("still serving"));
    }

    [Test]
    public void ExistingLogOfAnotherOwner_IsNotHandedToTheDaemonUser()
    {
        string log = Path.Combine(_daemon.Folder, "app.log");
        File.WriteAllText(log, "root's lines\n");
        _daemon.Start("--log-file", log, "--user", "nobody");

        Assert.That(TestEnvironment.Owner(log), Is.EqualTo(0u), "only a file the daemon created, or its user's, changes hands");
        string text = File.ReadAllText(log);
        Assert.That(text, Does.StartWith("root's lines\n"));
        Assert.That(text, Does.Contain($"log file {log} belongs to uid 0, not to uid 65534: left as it is"));
        Assert.That(text, Does.Contain("running as user nobody"), "the daemon still writes through the descriptor it has");
    }

    // ---- 2. a lock on a stale pid file ----------------------------------------------------------

    [TestCase("posix", false, TestName = "StalePidFile_ReadLockedByAnotherUser_IsReplaced_NotTakenForADaemon")]
    [TestCase("ofd", false, TestName = "StalePidFile_OfdLockedByAnotherUser_IsReplaced_NotTakenForADaemon")]
    [TestCase("posix", true, TestName = "StalePidFile_NamingTheReaderItself_NeverGetsTheReaderSignalled")]
    public void PoisonedStalePidFile(string lockKind, bool namesTheReader)
    {
        File.WriteAllText(_daemon.PidFile, "999999\n");
        Assert.That(Syscall.chmod(_daemon.PidFile, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP | FilePermissions.S_IROTH), Is.EqualTo(0));
        int reader = HoldLock(_daemon.PidFile, lockKind);
        if (namesTheReader)
        {
            // The reader's own pid in the file: the file is 0644 and the reader cannot write it, so
            // root wrote it earlier; the point is that a read lock never makes its holder a daemon.
            File.WriteAllText(_daemon.PidFile, $"{reader}\n");
        }

        Stat poisoned = TestEnvironment.StatOf(_daemon.PidFile);
        CommandResult status = _daemon.Run("status");
        Assert.That(status.ExitCode, Is.EqualTo(1), "stale, whoever reads it: " + status);
        Assert.That(_daemon.Run("reload").ExitCode, Is.EqualTo(7));
        CommandResult stopped = _daemon.Run("stop");
        Assert.That(stopped.Output, Is.EqualTo("not running\n"), stopped.ToString());
        Assert.That(ExampleDaemon.IsAlive(reader), Is.True, "the reader was never signalled");

        int daemon = _daemon.Start();
        Stat fresh = TestEnvironment.StatOf(_daemon.PidFile);
        Assert.That(fresh.st_ino, Is.Not.EqualTo(poisoned.st_ino), "a new inode, never the one someone holds a lock on");
        Assert.That(Convert.ToString((int)fresh.st_mode & 0x1ff, 8), Is.EqualTo("644"));
        Assert.That(File.ReadAllText(_daemon.PidFile), Is.EqualTo($"{daemon}\n"));
        Assert.That(File.Exists(_daemon.PidFile + ".new"), Is.False, "no temporary file left");
        Assert.That(ExampleDaemon.FirstLine(_daemon.Run("status").Output), Is.EqualTo($"running (pid {daemon})"));
        Assert.That(_daemon.Echo("hello"), Is.EqualTo("hello"));

        Assert.That(_daemon.Run("stop").Output, Is.EqualTo($"stopped (pid {daemon})\n"));
        Assert.That(ExampleDaemon.IsAlive(reader), Is.True);
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
    }

    [Test]
    public void StalePidFile_ReadLocked_ManyStartsAtOnce_GiveOneDaemon()
    {
        File.WriteAllText(_daemon.PidFile, "999999\n");
        HoldLock(_daemon.PidFile, "posix");

        var starts = Enumerable.Range(0, 6).Select(_ => _daemon.Launch(new[] { "start" }.Concat(_daemon.CommonOptions))).ToList();
        var outputs = starts.Select(p =>
        {
            CommandResult result = _daemon.Finish(p);
            return (result.ExitCode, output: result.Output + result.Error);
        }).ToList();

        int daemon = _daemon.ReadPid();
        Assert.That(outputs.Select(o => o.ExitCode), Is.All.EqualTo(0), string.Join(" | ", outputs));
        Assert.That(outputs.Count(o => o.output == $"started (pid {daemon})\n"), Is.EqualTo(1), string.Join(" | ", outputs));
        Assert.That(outputs.Count(o => o.output == $"already running (pid {daemon})\n"), Is.EqualTo(5), string.Join(" | ", outputs));
        Assert.That(_daemon.ProcessesOfThisTest().Where(p => p != daemon && IsExample(p)), Is.Empty, "one daemon");
        Assert.That(File.Exists(_daemon.PidFile + ".new"), Is.False);
    }

    // ---- 3. a fifo at the log path --------------------------------------------------------------

    [Test]
    public void FifoAtTheLogPath_FailsStartAtOnce_WithoutAReadyTimeout()
    {
        string log = Path.Combine(_daemon.Folder, "app.log");
        Assert.That(Syscall.mkfifo(log, FilePermissions.DEFFILEMODE), Is.EqualTo(0));
        CommandResult started = _daemon.Run("start", "--log-file", log, "--ready-timeout", "600");
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"Daemon.Example: log file {log} is not a regular file\n"));
    }

    [Test]
    public void FifoAtTheLogPath_AtReload_NeverBlocks_AndALaterReloadReopensTheLog()
    {
        _daemon.Start();
        File.Move(_daemon.LogFile, _daemon.LogFile + ".1");
        Assert.That(Syscall.mkfifo(_daemon.LogFile, FilePermissions.DEFFILEMODE), Is.EqualTo(0));
        for (int i = 0; i < 5; i++)
        {
            Assert.That(_daemon.Run("reload").ExitCode, Is.EqualTo(0));
        }

        string old = _daemon.LogFile + ".1";
        Assert.That(ExampleDaemon.Eventually(() => ExampleDaemon.Count(File.ReadAllText(old), "reloaded (no greeting file)") == 5), Is.True, File.ReadAllText(old));
        Assert.That(File.ReadAllText(old), Does.Contain($"reload: log file {_daemon.LogFile} is not a regular file; still writing to the old log"));

        File.Delete(_daemon.LogFile);
        Assert.That(_daemon.Run("reload").ExitCode, Is.EqualTo(0));
        Assert.That(_daemon.WaitForLog("reloaded (no greeting file)"), Is.True, "the reload lock was never held by a blocked open");
        Assert.That(_daemon.Echo("fine"), Is.EqualTo("fine"));
    }

    // ---- 4. pseudo-files and one file for two purposes ------------------------------------------

    [TestCase("--pid-file", "pid file", TestName = "PidFileOnProc_IsRefused_AndNothingWritten")]
    [TestCase("--log-file", "log file", TestName = "LogFileOnProc_IsRefused_AndNothingWritten")]
    public void PseudoFile_IsRefused(string option, string what)
    {
        // A harmless proc file that is a regular, writable file: what a start would write goes into
        // its own process's name, so the test sees it without touching a kernel setting.
        string procFile = "/proc/self/comm";
        CommandResult started = _daemon.Run("start", option, procFile);
        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"Daemon.Example: {what} {procFile} is on proc, not a real file system; refusing to write it\n"));
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
        Assert.That(_daemon.Run("status", option, procFile).ExitCode, Is.EqualTo(option == "--pid-file" ? 4 : 3));
    }

    [Test]
    public void Run_WithALogOnProc_SaysWhyOnce()
    {
        CommandResult run = _daemon.Exec(new[] { "run", "--log-file", "/proc/self/comm", "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture) }, null);
        Assert.That(run.AssertOneClearLine(1), Does.EndWith("log file /proc/self/comm is on proc, not a real file system; refusing to write it"));
    }

    [Test]
    public void SamePathForPidAndLog_IsAUsageError()
    {
        string path = Path.Combine(_daemon.Folder, "both");
        foreach (string command in new[] { "start", "stop", "status", "run" })
        {
            CommandResult result = _daemon.Exec(new[] { command, "--pid-file", path, "--log-file", path, "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture) }, null);
            Assert.That(result.ExitCode, Is.EqualTo(2), command + ": " + result);
            Assert.That(result.Error, Is.EqualTo($"Daemon.Example: the pid file and the log file are the same file ({path}); give them different paths\n"));
        }

        Assert.That(File.Exists(path), Is.False);
    }

    [Test]
    public void SameFileThroughASymlinkedFolder_IsAUsageError()
    {
        string real = Path.Combine(_daemon.Folder, "run");
        Directory.CreateDirectory(real);
        File.CreateSymbolicLink(Path.Combine(_daemon.Folder, "alias"), real);
        string pid = Path.Combine(real, "x");
        File.WriteAllText(pid, "");
        CommandResult result = _daemon.Exec(new[] { "start", "--pid-file", pid, "--log-file", Path.Combine(_daemon.Folder, "alias", "x") }, null);
        Assert.That(result.ExitCode, Is.EqualTo(2), result.ToString());
        Assert.That(result.Error, Does.Contain("are the same file"));
    }

    // ---- 5. stage markers from the caller's environment -----------------------------------------

    [TestCase("daemon", "3", "3>/dev/null")]
    [TestCase("detach", "3", "3>/dev/null")]
    [TestCase("daemon", "3:1", "3>/dev/null")]
    [TestCase("detach", "3:1", "3>/dev/null")]
    [TestCase("daemon", "3:1", "3> >(cat >/dev/null)")]
    [TestCase("daemon", "7", "")]
    [TestCase("detach", "x", "")]
    public void StageMarkerFromTheCaller_IsIgnored_AndTheCommandRuns(string stage, string fd, string redirection)
    {
        string script = $"DAEMON_NET_STAGE={stage} DAEMON_NET_READY_FD={fd} \"$0\" status \"$@\" {redirection}; echo \"status=$?\"; " +
                        $"DAEMON_NET_STAGE={stage} DAEMON_NET_READY_FD={fd} \"$0\" stop \"$@\" {redirection}; echo \"stop=$?\"";
        CommandResult result = _daemon.Exec(new[] { "-c", script, _daemon.ProgramPath }.Concat(_daemon.CommonOptions), null, "/bin/bash");
        Assert.That(result.Output, Is.EqualTo("not running\nstatus=3\nnot running\nstop=0\n"), result.ToString());
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    [Test]
    public void StageMarkerFromTheCaller_NamingARealPipeOfTheRightInode_ButReadable_IsIgnored()
    {
        // The read end of a pipe, with its true inode: still no readiness pipe of ours.
        string script = "exec 3< <(exec sleep 60 2>/dev/null); sp=$!; ino=$(stat -L -c %i /proc/self/fd/3); " +
                        "DAEMON_NET_STAGE=daemon DAEMON_NET_READY_FD=3:$ino \"$0\" status \"$@\"; echo \"status=$?\"; kill $sp";
        CommandResult result = _daemon.Exec(new[] { "-c", script, _daemon.ProgramPath }.Concat(_daemon.CommonOptions), null, "/bin/bash");
        Assert.That(result.Output, Is.EqualTo("not running\nstatus=3\n"), result.ToString());
    }

    // ---- 6. hostile characters in paths ----------------------------------------------------------

    [Test]
    public void ControlCharactersInAPath_AreQuoted_InTheOneErrorLine()
    {
        string pid = Path.Combine(_daemon.Folder, "no\nsuch\u001b[31m", "d.pid");
        CommandResult started = _daemon.Exec(new[] { "start", "--pid-file", pid, "--log-file", _daemon.LogFile, "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture) }, null);
        started.AssertOneClearLine(1);
        Assert.That(started.Error, Does.Not.Contain("\u001b"), "no raw escape reaches the terminal");
        Assert.That(started.Error, Does.Contain("$'" + _daemon.Folder + "/no\\nsuch\\e[31m/d.pid'"));
    }

    [Test]
    public void NonUtf8BytesInAPath_AreRefused_NeverMergedIntoAnotherPath()
    {
        string script = "\"$0\" start --pid-file \"$1\"/$'\\xff'.pid --log-file \"$1\"/log --port \"$2\"; echo \"start=$?\"";
        CommandResult result = _daemon.Exec(new[] { "-c", script, _daemon.ProgramPath, _daemon.Folder, _daemon.Port.ToString(CultureInfo.InvariantCulture) }, null, "/bin/bash");
        Assert.That(result.Output, Does.Contain("start=2"), result.ToString());
        Assert.That(result.Error, Does.Contain("for --pid-file: not valid UTF-8").And.Not.Contain("\ufffd"), result.ToString());
        Assert.That(Directory.GetFiles(_daemon.Folder), Is.Empty, "no file under a mangled name");
    }

    // ---- helpers ---------------------------------------------------------------------------------

    private CommandResult AsNobody(string script, params string[] args)
    {
        CommandResult result = _daemon.ExecAsNobody(new[] { "/bin/sh", "-c", script, "sh" }.Concat(args));
        Assert.That(result.ExitCode, Is.EqualTo(0), "as nobody: " + result);
        return result;
    }

    /// <summary>
    /// Starts a lock holder as nobody, with a read lock on a file anyone can read: what any local
    /// user can do to a 0644 pid file. Returns its pid once it holds the lock.
    /// </summary>
    private int HoldLock(string path, string kind) => _daemon.HoldLockAsNobody(TestEnvironment.LockHolder, path, kind, "read");

    /// <summary>A root file, 0640, that the attacker wants: a stand-in for /etc/shadow.</summary>
    private string Secret()
    {
        string path = Path.Combine(_daemon.Folder, "shadow");
        File.WriteAllText(path, "root:secret\n");
        Assert.That(Syscall.chmod(path, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP), Is.EqualTo(0));
        return path;
    }

    private static void AssertUntouched(string secret)
    {
        Assert.That(TestEnvironment.Owner(secret), Is.EqualTo(0u), "still root's");
        Assert.That(File.ReadAllText(secret), Is.EqualTo("root:secret\n"), "nothing appended");
    }

    private string FolderOwnedByNobody()
    {
        string folder = Path.Combine(_daemon.Folder, "logs");
        Directory.CreateDirectory(folder);
        Assert.That(Syscall.chown(folder, 65534, 65534), Is.EqualTo(0));
        return folder;
    }

    private static bool IsExample(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim() == "Daemon.Example";
        }
        catch (IOException)
        {
            return false;
        }
    }
}
