namespace Daemon.Core.Tests.Integration;

/// <summary>
/// A fixture whose tests share one real systemd (<see cref="SystemdSandbox"/>): booted before the
/// first test with the fixture's folder (labelled <see cref="FolderLabel"/>) shared, stopped after
/// the last, which ends whatever the units started; then the folder goes. A derived fixture keeps
/// its own <c>[Category]</c> and parallelism attributes.
/// </summary>
public abstract class SystemdSandboxFixture
{
    /// <summary>The fixture's folder, shared with systemd (protected and named like a field, as <see cref="DaemonFixture"/>'s daemon).</summary>
    protected ExampleDaemon _files = null!;

    private SystemdSandbox? _systemd;

    /// <summary>The fixture's systemd.</summary>
    protected SystemdSandbox Systemd => _systemd!;

    /// <summary>The label of the fixture's temp folder.</summary>
    protected abstract string FolderLabel { get; }

    [OneTimeSetUp]
    public void BootSystemd()
    {
        _files = new ExampleDaemon(FolderLabel);
        BeforeBoot();
        _systemd = SystemdSandbox.Boot(_files);
        AfterBoot();
    }

    [OneTimeTearDown]
    public void StopSystemd()
    {
        try
        {
            _systemd?.Dispose();
        }
        finally
        {
            _files?.Dispose();
        }
    }

    /// <summary>What the fixture needs of the machine before systemd boots (it may ignore the fixture); nothing by default.</summary>
    protected virtual void BeforeBoot()
    {
    }

    /// <summary>What the fixture puts into systemd's root once it runs (<see cref="Systemd"/>); nothing by default.</summary>
    protected virtual void AfterBoot()
    {
    }
}
