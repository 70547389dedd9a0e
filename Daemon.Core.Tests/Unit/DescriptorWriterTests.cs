using System.Runtime.InteropServices;
using Daemon.Interop;
using Daemon.Logging;
using Mono.Unix.Native;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// The writers behind the commands' output, on real pipes: what a caller's pipe can do to them.
/// </summary>
[TestFixture]
public sealed class DescriptorWriterTests
{
    private int _read = -1;
    private int _write = -1;

    [SetUp]
    public void CreatePipe() => Assert.That(Posix.Pipe(out _read, out _write, out _), Is.EqualTo(0));

    [TearDown]
    public void ClosePipe()
    {
        Posix.Close(_read);
        Posix.Close(_write);
    }

    [Test]
    public void Line_IsOneWrite_OfUtf8()
    {
        DescriptorWriter.Create(_write).WriteLine("stopped (pid 42) – ok");
        Assert.That(ReadAvailable(), Is.EqualTo("stopped (pid 42) – ok\n"));
    }

    [Test]
    public void FullNonBlockingPipe_WaitsForRoom_InsteadOfDroppingTheLine()
    {
        Assert.That(Posix.SetNonBlocking(_write, true), Is.True);
        int filled = Fill(_write);
        Assert.That(filled, Is.GreaterThan(0), "the pipe is full");

        // The writer meets the full pipe on a thread of its own; the reader drains it only once
        // the writer has been seen holding on, as a slow caller would. The writer's wait for room
        // is bounded (a second by default; 30 s here, so that a busy machine's late drain is still
        // in time).
        var writer = new Thread(() => DescriptorWriter.Create(_write, roomWaitMilliseconds: 30_000).WriteLine("started (pid 7)")) { IsBackground = true };
        writer.Start();
        Assert.That(writer.Join(50), Is.False, "a full pipe holds the writer instead of dropping the line at once");
        Assert.That(Drain(filled), Is.EqualTo(filled));
        Assert.That(writer.Join(TimeSpan.FromSeconds(10)), Is.True, "the writer returns once there is room");
        Assert.That(ReadAvailable(), Is.EqualTo("started (pid 7)\n"));
    }

    [Test]
    public void ClosedReader_LosesTheLine_WithoutThrowing()
    {
        Posix.Close(_read);
        _read = -1;
        Assert.DoesNotThrow(() => DescriptorWriter.Create(_write).WriteLine("nobody reads this"));
    }

    private static int Fill(int fd)
    {
        IntPtr chunk = Marshal.AllocHGlobal(4096);
        try
        {
            int total = 0;
            while (Syscall.write(fd, chunk, 4096) > 0)
            {
                total += 4096;
            }

            return total;
        }
        finally
        {
            Marshal.FreeHGlobal(chunk);
        }
    }

    private int Drain(int count)
    {
        byte[] buffer = new byte[count];
        int done = 0;
        while (done < count)
        {
            long n = Posix.Read(_read, buffer.AsSpan(done), out _);
            if (n <= 0)
            {
                break;
            }

            done += (int)n;
        }

        return done;
    }

    private string ReadAvailable()
    {
        if (!Posix.WaitReadable(_read, 2000, out _))
        {
            return "";
        }

        var buffer = new byte[4096];
        long n = Posix.Read(_read, buffer, out _);
        return Encoding.UTF8.GetString(buffer, 0, (int)Math.Max(0, n));
    }
}
