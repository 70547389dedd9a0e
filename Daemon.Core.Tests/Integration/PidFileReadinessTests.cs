using Daemon.Commands;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// Readiness is told by the lock on the pid file's starting byte, not by an empty file: a second
/// local user (<c>nobody</c>), who can read the 0644 file and so take read locks on any byte the
/// daemon does not hold, can fake neither "starting" nor "ready". A row of docs/RELIABILITY.md.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class PidFileReadinessTests : DaemonFixture
{
    /// <summary>
    /// A python3 script that takes a read lock on LENGTH bytes from START of a file (0: to the end
    /// and beyond), <c>posix</c> or <c>ofd</c>, prints <c>locked PID</c> and holds it until its
    /// standard input closes. Arguments: the file, the kind, START, LENGTH.
    /// </summary>
    private const string RangeLockHolder = """
        import fcntl, os, struct, sys
        f = open(sys.argv[1], "r")
        start, length = int(sys.argv[3]), int(sys.argv[4])
        if sys.argv[2] == "ofd":
            fcntl.fcntl(f, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_RDLCK, 0, start, length, 0))
        else:
            fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB, length, start, 0)
        print("locked", os.getpid(), flush=True)
        sys.stdin.read()
        """;

    private const long StartingByte = 1 << 20;
    protected override ExampleDaemon CreateDaemon() => CreateDaemonNobodyCanReach("ready");

    [TestCase("posix")]
    [TestCase("ofd")]
    public void ReadLocksOfAnotherUser_OnEveryByteTheDaemonLetsGo_FakeNeitherStartingNorReady(string kind)
    {
        string fifo = _daemon.MakeFifo();
        using Process start = _daemon.Launch(new[] { "start" }.Concat(_daemon.CommonOptions).Concat(new[] { "--greeting-file", fifo }));
        int pid = _daemon.WaitForStartingDaemon();

        // While it starts, everything past the starting byte is free: taking it must not say "ready".
        HoldReadLock(kind, StartingByte + 1, 0);
        CommandResult starting = _daemon.Run("status");
        Assert.That((starting.ExitCode, starting.Output), Is.EqualTo((ExitCodes.Starting, $"starting (pid {pid})\n")), starting.ToString());

        File.WriteAllText(fifo, "hello\n");
        CommandResult started = _daemon.Finish(start);
        Assert.That(started.Output, Is.EqualTo($"started (pid {pid})\n"), started.ToString());

        // Once ready, the starting byte is free too: taking it must not say "starting".
        HoldReadLock(kind, StartingByte, 1);
        CommandResult running = _daemon.Run("status");
        Assert.That((running.ExitCode, ExampleDaemon.FirstLine(running.Output)), Is.EqualTo((ExitCodes.Success, $"running (pid {pid})")), running.ToString());
        Assert.That(_daemon.Run("start").Output, Is.EqualTo($"already running (pid {pid})\n"));
        Assert.That(_daemon.Run("stop").Output, Is.EqualTo($"stopped (pid {pid})\n"));
        Assert.That(_daemon.Holders.All(a => !a.HasExited), Is.True, "no lock holder was signalled");
    }

    /// <summary>As nobody, read-locks <paramref name="length"/> bytes from <paramref name="from"/> of the pid file and holds them.</summary>
    private void HoldReadLock(string kind, long from, long length) =>
        _daemon.HoldLockAsNobody(RangeLockHolder, _daemon.PidFile, kind, from.ToString(CultureInfo.InvariantCulture), length.ToString(CultureInfo.InvariantCulture));
}
