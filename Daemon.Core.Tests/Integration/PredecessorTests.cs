using Daemon.Handover;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// The next generation's end of a handover against a predecessor that misbehaves: a python
/// process that holds the pid file the way a daemon does and answers on the control socket.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class PredecessorTests
{
    // argv: pid file, control channel name (abstract, without the NUL). Locks and names the pid file, then
    // answers one HANDOVER with a pipe's read end where a listening socket should be.
    private const string FakeDaemon = """
        import fcntl, os, socket, struct, sys
        f = open(sys.argv[1], "w")
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        f.write(f"{os.getpid()}\n"); f.flush()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.bind("\0" + sys.argv[2]); s.listen(1)
        print("ready", flush=True)
        c, _ = s.accept()
        c.recv(4096)
        r, w = os.pipe()
        print(os.fstat(r).st_ino, flush=True)
        socket.send_fds(c, [b"LISTENERS tcp"], [r])
        c.recv(4096)
        """;

    [Test]
    public void APredecessorThatHandsOverSomethingElse_IsRefused_AndNoDescriptorLeaks()
    {
        using var daemon = new ExampleDaemon("predecessor");
        string script = Path.Combine(daemon.Folder, "fake.py");
        File.WriteAllText(script, FakeDaemon);
        using Process fake = daemon.Launch(new[] { script, daemon.PidFile, ControlChannel.Prefix(daemon.PidFile) + "fake" }, program: "/usr/bin/python3");
        Assert.That(fake.StandardOutput.ReadLine(), Is.EqualTo("ready"));

        var listeners = new ListenerSet();
        DaemonException? e = Assert.Throws<DaemonException>(() => Predecessor.Connect(daemon.PidFile, listeners, null, TimeSpan.FromSeconds(30)));
        listeners.CloseAll();

        string pipe = $"pipe:[{fake.StandardOutput.ReadLine()}]";
        Assert.That(e!.Message, Is.EqualTo($"pid {fake.Id} handed over 'tcp', which is not a listening socket"));
        Assert.That(listeners.InheritedCount, Is.Zero);
        Assert.That(TestEnvironment.DescriptorTargets().Where(target => target == pipe), Is.Empty, $"the handed-over {pipe} is closed");
    }
}
