using Daemon.Interop;
using Daemon.Logging;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// JOURNAL_STREAM as systemd.exec(5) defines it: the decimal <c>device:inode</c> of the stream,
/// which counts only for a descriptor that still is that file.
/// </summary>
[TestFixture]
public sealed class JournalStreamTests
{
    private string _folder = null!;

    [SetUp]
    public void SetUp() => _folder = TestEnvironment.CreateTestFolder("journal-stream");

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [TestCase("9:16531180", 9UL, 16531180UL)]
    [TestCase("0:0", 0UL, 0UL)]
    [TestCase("18446744073709551615:1", ulong.MaxValue, 1UL)]
    public void Parse_ReadsDecimalDeviceAndInode(string value, ulong device, ulong inode)
    {
        Assert.That(JournalStream.Parse(value), Is.EqualTo((device, inode)));
    }

    [TestCase(null)]
    [TestCase("")]
    [TestCase("9")]
    [TestCase("9:")]
    [TestCase(":16531180")]
    [TestCase("9:16531180:1")]
    [TestCase("0x9:16531180")]
    [TestCase("-9:16531180")]
    [TestCase(" 9:16531180")]
    [TestCase("9:16531180\n")]
    public void Parse_RefusesAnythingElse(string? value)
    {
        Assert.That(JournalStream.Parse(value), Is.Null);
    }

    [Test]
    public void Names_TheFileWhoseDeviceAndInodeItHolds()
    {
        FileStatus journal = StatusOf(Path.Combine(_folder, "journal"));
        Assert.That(JournalStream.Names($"{journal.Device}:{journal.Inode}", journal), Is.True);
    }

    [Test]
    public void Names_NotAnotherFile_WhenStandardErrorWasRedirectedElsewhere()
    {
        // The variable is inherited, the descriptor was not: a program started by the service with
        // 2>file, or a daemon whose log file took descriptor 2 over.
        FileStatus journal = StatusOf(Path.Combine(_folder, "journal"));
        FileStatus elsewhere = StatusOf(Path.Combine(_folder, "elsewhere.log"));
        Assert.That(JournalStream.Names($"{journal.Device}:{journal.Inode}", elsewhere), Is.False);
    }

    [Test]
    public void Names_NothingWhenUnset()
    {
        Assert.That(JournalStream.Names(null, StatusOf(Path.Combine(_folder, "journal"))), Is.False);
    }

    /// <summary>The status of a new file at <paramref name="path"/>, through an open descriptor as the daemon takes it.</summary>
    private static FileStatus StatusOf(string path)
    {
        using FileStream file = File.Create(path);
        Assert.That(Posix.Fstat((int)file.SafeFileHandle.DangerousGetHandle(), out FileStatus status, out int errno), Is.EqualTo(0), $"errno {errno}");
        return status;
    }
}
