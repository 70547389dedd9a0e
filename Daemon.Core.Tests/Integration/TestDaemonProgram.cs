using Microsoft.Win32.SafeHandles;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// The test assembly's entry point: <c>dotnet Daemon.Core.Tests.dll keep-fd-daemon COMMAND ...</c>
/// runs <see cref="KeepDescriptorDaemon"/>, a daemon started through the dotnet host.
/// </summary>
public static class TestDaemonProgram
{
    public static int Main(string[] args) =>
        args.Length > 0 && args[0] == "keep-fd-daemon" ? new KeepDescriptorDaemon().Main(args[1..]) : 2;
}

/// <summary>A daemon that keeps one inherited descriptor (<c>--keep N</c>) and writes a line to it.</summary>
public sealed class KeepDescriptorDaemon : DaemonBase
{
    public KeepDescriptorDaemon()
        : base("keepfd")
    {
    }

    private bool _ignoreStop;

    protected override void ConfigureOptions(DaemonOptionSet options)
    {
        options.Add("--keep", "FD", "an inherited descriptor to keep", v => Options.KeepDescriptors.Add(int.Parse(v, CultureInfo.InvariantCulture)));
        options.AddFlag("--ignore-stop", "a main loop that ignores the stop request", () => _ignoreStop = true);
    }

    protected override Task OnStartupAsync(CancellationToken cancellationToken)
    {
        foreach (int fd in Options.KeepDescriptors)
        {
            using var kept = new FileStream(new SafeFileHandle(fd, ownsHandle: false), FileAccess.Write);
            kept.Write("kept by the daemon\n"u8);
        }

        return Task.CompletedTask;
    }

    protected override Task RunAsync(CancellationToken stoppingToken) =>
        Task.Delay(Timeout.Infinite, _ignoreStop ? CancellationToken.None : stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
}
