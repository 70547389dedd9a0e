using Daemon.PidFiles;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// A pid file taken over (a restart) or back (a failed one) while a failed restart's launcher is
/// removing the stale file: the remover write-locks the stale inode, checks that the path still
/// names it, and unlinks it; the take-over must not rename over the path in between.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class PidFileTakeOverTests
{
    // argv: the pid file. Write-locks it like a remover, says its inode, and on a line from stdin
    // says whether the path still names that inode, then exits (releasing the lock).
    private const string Remover = """
        import fcntl, os, sys
        f = open(sys.argv[1], "r+")
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print(os.fstat(f.fileno()).st_ino, flush=True)
        sys.stdin.readline()
        print("same" if os.stat(sys.argv[1]).st_ino == os.fstat(f.fileno()).st_ino else "renamed", flush=True)
        """;

    [Test]
    public void TakeOver_WaitsForAStaleFilesRemover_InsteadOfRenamingUnderIt()
    {
        using var daemon = new ExampleDaemon("takeover");
        File.WriteAllText(daemon.PidFile, "99999\n");
        string script = Path.Combine(daemon.Folder, "remover.py");
        File.WriteAllText(script, Remover);
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardInput = true, RedirectStandardOutput = true }.WithoutDiagnostics();
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(daemon.PidFile);
        using Process remover = Process.Start(start)!;
        daemon.Track(remover.Id);
        Assert.That(remover.StandardOutput.ReadLine(), Does.Match("^[0-9]+$"), "the remover holds the stale file");

        // A second in production; here long enough that a slow machine cannot run it out.
        TimeSpan patience = LockedPidFile.RemoverPatience;
        LockedPidFile.RemoverPatience = TimeSpan.FromMinutes(2);
        try
        {
            Task<LockedPidFile> takeOver = Task.Run(() => LockedPidFile.TakeOver(daemon.PidFile, Environment.ProcessId));
            string fresh = PidFileStore.FreshPath(daemon.PidFile);
            Assert.That(ExampleDaemon.Eventually(() => File.Exists(fresh) && File.ReadAllText(fresh) == $"{Environment.ProcessId}\n", TimeSpan.FromSeconds(30)), Is.True, "the new file is written, ready to be renamed");

            remover.StandardInput.WriteLine("check");
            remover.StandardInput.Flush();
            Assert.That(remover.StandardOutput.ReadLine(), Is.EqualTo("same"), "no rename while the remover holds the stale inode");
            Assert.That(remover.WaitForExit(60_000), Is.True);

            Assert.That(takeOver.Wait(TimeSpan.FromSeconds(60)), Is.True, "the take-over goes on once the remover is done");
            using LockedPidFile taken = takeOver.Result;
            Assert.That(File.ReadAllText(daemon.PidFile), Is.EqualTo($"{Environment.ProcessId}\n"));
            Assert.That(File.Exists(fresh), Is.False);
        }
        finally
        {
            LockedPidFile.RemoverPatience = patience;
        }
    }
}
