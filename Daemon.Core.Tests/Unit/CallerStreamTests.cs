using Daemon.Logging;
using Mono.Unix.Native;

namespace Daemon.Core.Tests.Unit;

/// <summary>A command's copy of descriptor 1 or 2 is made only when needed, and released.</summary>
[TestFixture]
[NonParallelizable]
public sealed class CallerStreamTests
{
    private int _read = -1;
    private int _write = -1;

    [SetUp]
    public void SetUp() => Assert.That(Syscall.pipe(out _read, out _write), Is.EqualTo(0));

    [TearDown]
    public void TearDown()
    {
        _ = Syscall.close(_read);
        _ = Syscall.close(_write);
    }

    [Test]
    public void NoCopyIsMade_UntilTheFirstWrite_AndDisposeClosesIt()
    {
        int before = Copies();
        var stream = new CallerStream(_write);
        Assert.That(Copies(), Is.EqualTo(before), "an instance that never writes holds nothing");

        stream.WriteLine("one line");
        Assert.That(Copies(), Is.EqualTo(before + 1), "one copy, made at the first write");

        stream.Dispose();
        Assert.That(Copies(), Is.EqualTo(before), "released");
    }

    [Test]
    public void APinnedCopy_StillReachesTheFirstPipe_AfterTheDescriptorIsReused()
    {
        var stream = new CallerStream(_write);
        stream.Pin();
        Assert.That(Syscall.pipe(out int otherRead, out int otherWrite), Is.EqualTo(0));
        Assert.That(Syscall.dup2(otherWrite, _write), Is.EqualTo(_write), "the number now names another pipe, as 2 does after the log takes it");

        stream.WriteLine("to the caller");
        stream.Dispose();
        _ = Syscall.close(_write);
        _ = Syscall.close(otherWrite);
        _ = Syscall.close(otherRead);
        _write = -1;
        using var reader = new StreamReader(new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle((System.IntPtr)_read, ownsHandle: true), FileAccess.Read));
        _read = -1;
        Assert.That(reader.ReadToEnd(), Is.EqualTo("to the caller\n"));
    }

    /// <summary>How many descriptors of this process name the test pipe's write end.</summary>
    private int Copies()
    {
        string target = new FileInfo($"/proc/self/fd/{_write}").LinkTarget!;
        return TestEnvironment.DescriptorTargets().Count(t => t == target) - 1;
    }
}
