using System;
using System.Collections.Generic;
using System.Diagnostics;
using Microsoft.Extensions.Hosting;

namespace Daemon.Hosting;

/// <summary>
/// Hears the Generic Host's "HostBuilding" event (source "Microsoft.Extensions.Hosting"), which
/// every <c>HostBuilder</c>, <c>HostApplicationBuilder</c> and <c>WebApplicationBuilder</c> raises
/// in <c>Build()</c> with an <see cref="IHostBuilder"/> whose changes still apply to that host.
/// </summary>
internal sealed class HostBuildingObserver : IObserver<DiagnosticListener>, IObserver<KeyValuePair<string, object?>>, IDisposable
{
    private const string SourceName = "Microsoft.Extensions.Hosting";
    private const string HostBuilding = "HostBuilding";
    private readonly Action<IHostBuilder> _configure;
    private readonly List<IDisposable> _subscriptions = new();

    public HostBuildingObserver(Action<IHostBuilder> configure) => _configure = configure;

    public void OnNext(DiagnosticListener value)
    {
        if (value.Name == SourceName)
        {
            lock (_subscriptions)
            {
                _subscriptions.Add(value.Subscribe(this));
            }
        }
    }

    public void OnNext(KeyValuePair<string, object?> value)
    {
        if (value.Key == HostBuilding && value.Value is IHostBuilder hostBuilder)
        {
            _configure(hostBuilder);
        }
    }

    /// <summary>Stops hearing the sources subscribed to; dispose the subscription to <see cref="DiagnosticListener.AllListeners"/> too.</summary>
    public void Dispose()
    {
        lock (_subscriptions)
        {
            _subscriptions.ForEach(s => s.Dispose());
            _subscriptions.Clear();
        }
    }

    public void OnCompleted()
    {
    }

    public void OnError(Exception error)
    {
    }
}
