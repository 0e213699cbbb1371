module github.com/dispatcherhq/dispatcher/deployments/docker/probe

go 1.26.0
